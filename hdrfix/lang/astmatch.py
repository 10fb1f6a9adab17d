"""Small structural tests on ``ast`` nodes, shared by the site analysis and the phases."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

CLAMP_CALLS = frozenset({"clamp", "clip", "clamp_", "clip_"})
IN_PLACE_CLAMPS = frozenset({"clamp_", "clip_"})
LOG_CALLS = frozenset({"log", "log1p"})


def call_name(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def product_factors(node: ast.AST) -> list[ast.AST]:
    """``a * (b * c) * d`` -> ``[a, b, c, d]``: a product's factors (``ast`` keeps no
    parentheses, so they are ignored, as libcst's ``product_factors`` ignores them)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return product_factors(node.left) + product_factors(node.right)
    return [node]


def attr_of_self(node: ast.AST) -> str | None:
    """``x`` for ``self.x``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr if node.value.id == "self" else None
    return None


def call_owner(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id
    return None


def sum_of_names(node: ast.AST | None) -> tuple[str, str] | None:
    """``(a, b)`` for ``a + b`` and ``a.add(b)``."""
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Add)
        and isinstance(node.left, ast.Name)
        and isinstance(node.right, ast.Name)
    ):
        return node.left.id, node.right.id
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add"
        and isinstance(node.func.value, ast.Name)
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.Name)
    ):
        return node.func.value.id, node.args[0].id
    return None


def own_expressions(stmt: ast.AST) -> list[ast.AST]:
    """What a statement evaluates itself: all of a simple one, the header of a compound one."""
    from hdrfix.lang.names import header_parts

    if isinstance(stmt, (ast.If, ast.While, ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)):
        return header_parts(stmt)
    if isinstance(stmt, (ast.Try, ast.Match, ast.ExceptHandler)):
        return []
    return [stmt]


def calls_with_lambda(
    node: ast.AST, inside_lambda: bool = False
) -> Iterator[tuple[ast.Call, bool]]:
    """Every call in ``node``, and whether it sits inside a lambda (run later, elsewhere)."""
    if isinstance(node, ast.Call):
        yield node, inside_lambda
    for child in ast.iter_child_nodes(node):
        yield from calls_with_lambda(child, inside_lambda or isinstance(node, ast.Lambda))


def assigned_value(stmt: ast.AST, name: str) -> ast.expr | None:
    """The value of ``name = value`` (or ``name: T = value``); None for other statements."""
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and stmt.targets[0].id == name
    ):
        return stmt.value
    if (
        isinstance(stmt, ast.AnnAssign)
        and isinstance(stmt.target, ast.Name)
        and stmt.target.id == name
        and stmt.value is not None
    ):
        return stmt.value
    return None


def walrus_value(stmt: ast.AST, name: str) -> ast.expr | None:
    """The value of ``(name := value)`` in what ``stmt`` evaluates itself (a simple statement,
    or the test of an ``if``/``while``): an assignment like ``name = value`` at that statement."""
    stack = list(own_expressions(stmt))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.NamedExpr) and node.target.id == name:
            return node.value
        if not isinstance(node, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(ast.iter_child_nodes(node))
    return None


@dataclass(frozen=True)
class ClampCall:
    line: int
    low: float | None  # None: no bound on that side
    high: float | None
    literal: bool  # both given bounds are number literals


def clamp_of(stmt: ast.AST, name: str) -> ClampCall | None:
    """``name = torch.clamp(name, a, b)``, ``name = name.clamp(...)``, ``name.clamp_(...)``..."""
    call: ast.AST | None = assigned_value(stmt, name)
    method_only = False
    if call is None and isinstance(stmt, ast.Expr):
        call, method_only = stmt.value, True
    if not isinstance(call, ast.Call) or call_name(call) not in CLAMP_CALLS:
        return None
    func = call.func
    on_name = (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == name
    )
    if method_only and not (on_name and call_name(call) in IN_PLACE_CLAMPS):
        return None
    positional = list(call.args)
    if not on_name:
        if not (positional and isinstance(positional[0], ast.Name) and positional[0].id == name):
            return None
        positional = positional[1:]
    return _bounds(call, positional, stmt.lineno)  # type: ignore[attr-defined]


def _bounds(call: ast.Call, positional: list[ast.expr], line: int) -> ClampCall:
    given: dict[str, ast.expr] = dict(zip(("min", "max"), positional))
    for kw in call.keywords:
        if kw.arg in ("min", "max", "a_min", "a_max"):
            given[kw.arg.removeprefix("a_")] = kw.value
    values = {k: _number(v) for k, v in given.items()}
    literal = all(v is not None for v in values.values())
    low = values.get("min") if "min" in given else None
    high = values.get("max") if "max" in given else None
    if not literal:
        low = -float("inf") if "min" in given else None
        high = float("inf") if "max" in given else None
    return ClampCall(line, low, high, literal)


def inline_clamp(arg: ast.AST) -> tuple[ClampCall, ast.expr] | None:
    """``clamp(<sum>, max=...)`` written inside the exp: the clamp and the sum it bounds."""
    if isinstance(arg, ast.Call) and call_name(arg) in ("clamp", "clip") and arg.args:
        if isinstance(arg.func, ast.Attribute) and isinstance(arg.func.value, ast.BinOp):
            return _bounds(arg, list(arg.args), arg.lineno), arg.func.value  # (a + b).clamp()
        if sum_of_names(arg.args[0]):
            return _bounds(arg, list(arg.args[1:]), arg.lineno), arg.args[0]
    return None


def _number(node: ast.expr) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    return None


def module_aliases(tree: ast.Module, fn: ast.AST | None = None) -> dict[str, str]:
    """Local name -> module for ``import torch``, ``import torch as T``, ``import numpy as np``
    at the top of the file (and inside ``fn``)."""
    found: dict[str, str] = {}
    scopes: list[ast.AST] = [tree] + ([fn] if fn is not None else [])
    for scope in scopes:
        body = scope.body if isinstance(scope, (ast.Module, ast.FunctionDef)) else []
        stack = list(body)
        while stack:
            stmt = stack.pop(0)
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.name in ("torch", "numpy") and alias.asname:
                        found[alias.asname] = alias.name
                    elif alias.name.split(".")[0] in ("torch", "numpy") and not alias.asname:
                        found[alias.name.split(".")[0]] = alias.name.split(".")[0]
            elif isinstance(stmt, (ast.Try, ast.If)):
                stack.extend(stmt.body)
                if isinstance(stmt, ast.Try):
                    for handler in stmt.handlers:
                        stack.extend(handler.body)
    return found


def target_name(stmt: ast.AST, fallback: str = "") -> str:
    """``x`` for ``x = ...`` and ``x: T = ...``."""
    if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id
    return fallback
