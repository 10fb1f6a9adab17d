"""Following values across functions: who calls a helper with which argument, which helper a
call runs, what it returns, and which element of an unpacked tuple a name is.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hdrfix.lang.astmatch import own_expressions
from hdrfix.lang.flow import Flow

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import FunctionRef, PyFile


def callers(pyfile: PyFile, flow_of, ref: FunctionRef, param: str):
    """(caller, its calling statement's node, the argument for ``param``) for every call of the
    method ``ref`` as ``self.<name>(...)`` (or of the function ``ref``) in the file."""
    fn = pyfile.node(ref)
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    if ref.class_name and params and params[0] == "self":
        params = params[1:]
    found = []
    for caller in pyfile.functions:
        if caller.class_name != ref.class_name or caller.qualname == ref.qualname:
            continue
        if not _may_call(pyfile.segment(caller), ref.name):
            continue
        flow = flow_of(caller)
        for stmt in flow.statements():
            for expr in own_expressions(stmt):
                for call in (n for n in ast.walk(expr) if isinstance(n, ast.Call)):
                    func = call.func
                    named = (
                        isinstance(func, ast.Attribute)
                        and func.attr == ref.name
                        and isinstance(func.value, ast.Name)
                        and func.value.id == "self"
                    ) or (
                        ref.class_name is None
                        and isinstance(func, ast.Name)
                        and func.id == ref.name
                    )
                    if not named:
                        continue
                    arg: ast.AST | None = next(
                        (k.value for k in call.keywords if k.arg == param), None
                    )
                    if arg is None and param in params and params.index(param) < len(call.args):
                        arg = call.args[params.index(param)]
                    found.append((caller, flow.node_of(stmt), arg))
    return found


def callee(pyfile: PyFile, ref: FunctionRef, value: ast.AST) -> FunctionRef | None:
    """The method of the same class (``self.helper(...)``) or module function ``value`` calls."""
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "self"
        and ref.class_name
    ):
        return pyfile.function(f"{ref.class_name}.{func.attr}")
    if isinstance(func, ast.Name) and func.id == "self" and ref.class_name:
        return pyfile.function(f"{ref.class_name}.forward")  # ``self(...)`` runs forward
    if isinstance(func, ast.Name):
        return pyfile.function(func.id)
    return None


def returned(flow: Flow, index: int | None) -> Iterator[tuple[ast.stmt, ast.expr]]:
    """Each ``return`` of the function with the value it hands back (``index``: the element
    of a returned tuple; returns of another shape are left out), and in a generator each
    ``yield``: what a ``for`` over the helper's result receives."""
    for stmt in flow.statements():
        value: ast.expr | None = None
        if isinstance(stmt, ast.Return):
            value = stmt.value
        elif isinstance(stmt, (ast.Expr, ast.Assign)) and isinstance(stmt.value, ast.Yield):
            value = stmt.value.value
        if value is None:
            continue
        if index is not None:
            if not isinstance(value, (ast.Tuple, ast.List)) or index >= len(value.elts):
                continue
            value = value.elts[index]
        yield stmt, value


def index_in(target: ast.Tuple | ast.List, name: str) -> int | None:
    for i, elt in enumerate(target.elts):
        if isinstance(elt, ast.Starred):
            return None
        if isinstance(elt, ast.Name) and elt.id == name:
            return i
    return None


def yielded_or_returned(flow: Flow, index: int | None) -> Iterator[tuple[ast.stmt, ast.expr]]:
    """:func:`returned`, and the values of ``yield`` anywhere in an expression (a generator's
    every output, for the check that only asks whether any may carry a residual)."""
    yield from returned(flow, index)
    for stmt in flow.statements():
        for expr in own_expressions(stmt):
            for node in ast.walk(expr):
                inline = isinstance(stmt, (ast.Expr, ast.Assign)) and stmt.value is node
                if isinstance(node, (ast.Yield, ast.YieldFrom)) and node.value and not inline:
                    yield stmt, node.value


def loop_source(flow: Flow, target: ast.AST) -> tuple[ast.For | ast.AsyncFor, ast.expr] | None:
    """For the target node of a ``for`` (``log_img, delta_log`` in ``for log_img, delta_log in
    self._tiles(x)``): the loop and its iterable."""
    for stmt in flow.statements():
        if isinstance(stmt, (ast.For, ast.AsyncFor)) and stmt.target is target:
            return stmt, stmt.iter
    return None


def _may_call(text: str, name: str) -> bool:
    """Whether ``text`` can call ``name``: the name, then its parenthesis after any spaces,
    newlines or line continuations (``self.helper (x)`` is a call too)."""
    return re.search(rf"\b{re.escape(name)}(?:\s|\\)*\(", text) is not None
