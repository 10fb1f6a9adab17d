"""Reading ``PatchNetwork`` with ``ast``: how its file spells torch, and whether phase2 is
already in it. ``--check`` and ``status`` of a repository phase2 was applied to thus answer
without libcst (importing it is 0.15 s, half of such a run).

These questions only ever answer *yes* where the libcst planners
(:func:`hdrfix_plugins.phase2.netinit.has_scale_parameter`,
:func:`hdrfix_plugins.phase2.network.bound_forward`) would find nothing to do; a *no* sends the
run to them, which plan the edit or say what they do not recognise, as before. The same
structural rules, read off ``ast`` nodes: a product's factors with its parentheses ignored,
statements in libcst's order (:mod:`hdrfix.lang.stmtlines`).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from hdrfix.lang.astmatch import attr_of_self, call_name, product_factors
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.stmtlines import placed_statements
from hdrfix_plugins.phase2.scale import PARAM as SCALE_ATTR

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import PyFile


def torch_names(tree: ast.Module, rel: str) -> tuple[str, str]:
    """How the module spells ``torch`` and ``torch.nn`` (``import torch.nn as nn`` and the like)."""
    torch = nn = None
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch":
                    torch = alias.asname or "torch"
                elif alias.name == "torch.nn":
                    if alias.asname:
                        nn = alias.asname
                    else:
                        torch = torch or "torch"
        elif isinstance(node, ast.ImportFrom) and node.module == "torch" and not node.level:
            nn = next((a.asname or a.name for a in node.names if a.name == "nn"), nn)
    if torch is None:
        raise HdrfixError(
            "the network file does not `import torch`",
            rel,
            hint="add `import torch` at its top, then run hdrfix again",
        )
    return torch, nn or f"{torch}.nn"


def has_scale_parameter(init: ast.FunctionDef | ast.AsyncFunctionDef, text: str) -> bool:
    """``self.residual_output_scale = ...`` (annotated or not) or
    ``self.register_parameter("residual_output_scale", ...)`` anywhere in ``init``."""
    for node in ast.walk(init):
        if isinstance(node, ast.Assign) and any(map(_is_scale, node.targets)):
            return True
        if isinstance(node, ast.AnnAssign) and _is_scale(node.target):
            return True
        if isinstance(node, ast.Call) and call_name(node) == "register_parameter" and node.args:
            first = node.args[0]
            if all(_before(first, k.value) for k in node.keywords):
                segment = ast.get_source_segment(text, first) or ""
                if SCALE_ATTR in segment:
                    return True
    return False


def forward_covered(
    pyfile: PyFile, fn: ast.FunctionDef | ast.AsyncFunctionDef, element: int | None
) -> bool:
    """Whether every ``return`` of a value hands out a residual that went through
    ``tanh(...) * self.residual_output_scale`` (written there, or computed from a name that
    was), ``element`` naming the residual in a returned tuple (the first by default)."""
    scaled: set[str] = set()
    returns = 0
    for placed in placed_statements(pyfile, fn):
        small = placed.stmt
        track_scaled(small, scaled)
        if isinstance(small, ast.Return) and not returns_nothing(small):
            returns += 1
            head = returned_head(small, element or 0)
            if head is None or not is_covered(head, scaled):
                return False
    return returns > 0


def track_scaled(small: ast.stmt, scaled: set[str]) -> None:
    """A name is *scaled* once assigned a bounded value or anything computed from a scaled
    name, and stops being scaled when assigned something else."""
    if isinstance(small, ast.Assign) and len(small.targets) == 1:
        target = small.targets[0]
        if isinstance(target, ast.Name):
            if is_covered(small.value, scaled):
                scaled.add(target.id)
            else:
                scaled.discard(target.id)


def is_covered(value: ast.expr, scaled: set[str]) -> bool:
    """Whether ``value`` went through the bound: written there, or read from a scaled name."""
    return scaled_tanh(value) or bool(loaded(value) & scaled)


def _is_scale(node: ast.AST) -> bool:
    return attr_of_self(node) == SCALE_ATTR


def _before(a: ast.expr, b: ast.expr) -> bool:
    return (a.lineno, a.col_offset) < (b.lineno, b.col_offset)


def returns_nothing(stmt: ast.Return) -> bool:
    value = stmt.value
    return value is None or (isinstance(value, ast.Constant) and value.value is None)


def returned_head(stmt: ast.Return, element: int) -> ast.expr | None:
    """The residual a return hands out; None for a tuple without that element."""
    value = stmt.value
    if isinstance(value, ast.Tuple):
        elements = value.elts
        if len(elements) <= element or any(
            isinstance(e, ast.Starred) for e in elements[: element + 1]
        ):
            return None
        return elements[element]
    return value


def scaled_tanh(node: ast.AST) -> bool:
    for op in ast.walk(node):
        if isinstance(op, ast.BinOp) and isinstance(op.op, ast.Mult):
            factors = product_factors(op)
            if any(call_name(f) == "tanh" for f in factors) and any(map(_is_scale, factors)):
                return True
    return False


def loaded(node: ast.AST) -> set[str]:
    """Every name in an expression, as libcst's ``loaded_names`` counts them: the names bound
    inside it (a comprehension's, a lambda's parameters) too, not attributes or keywords."""
    names = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            names.add(n.id)
        elif isinstance(n, ast.arg):
            names.add(n.arg)
    return names
