"""The libcst statements of a function, paired with its ``ast`` statements."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import libcst as cst

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import FunctionRef, PyFile


def cst_index(pyfile: PyFile, ref: FunctionRef) -> CstIndex:
    """The :class:`CstIndex` of a function, made once per pair of parses of it.

    Both parses must be the ones it was made of: ``analyses`` is shared by every index of the
    same text, and one text can have two ``ast`` trees in a process (parsed again once the
    cache of trees let the first go), while libcst's parse of the function is shared by text.
    Pairs keyed by another tree's nodes would find nothing."""
    fn = pyfile.cst(ref)
    node = pyfile.node(ref)
    cached = pyfile.analyses.get(("cst_index", ref.qualname))
    if cached is not None and cached[0] is fn and cached[1].ast_fn is node:  # type: ignore[attr-defined]
        return cached[1]  # type: ignore[return-value]
    index = CstIndex(pyfile, ref)
    pyfile.analyses[("cst_index", ref.qualname)] = (fn, index)
    return index


class CstIndex:
    """The libcst statement of one function for each of its ``ast`` statements.

    Both trees hold the same statements in the same order, so they are paired by walking them
    side by side: no position metadata (which costs more than the rest of a run) is needed.
    """

    def __init__(self, pyfile: PyFile, ref: FunctionRef) -> None:
        self.ref = ref
        self.fn = pyfile.cst(ref)
        self.ast_fn = pyfile.node(ref)
        self.indent = ref.indent
        self.pairs: dict[int, cst.CSTNode] = {}
        _pair(self.ast_fn.body, self.fn.body, self.pairs)

    def stmt(self, stmt: ast.AST) -> cst.CSTNode:
        """The libcst node of an ``ast`` statement: the compound statement, or the small one."""
        return self.pairs[id(stmt)]

    def value(self, stmt: ast.AST) -> cst.BaseExpression:
        node = self.stmt(stmt)
        return node.value  # type: ignore[attr-defined,no-any-return]

    def call(self, call: ast.Call, stmt: ast.AST) -> cst.Call:
        """The libcst node of an ``exp`` call inside statement ``stmt``: the calls of the same
        name are taken in source order (a pre-order walk) in both trees. (Columns would not
        do: libcst keeps continuation lines as written, so their offsets shift differently.)"""
        from hdrfix.lang.astmatch import call_name as ast_call_name
        from hdrfix.lang.cst.match import call_name

        name = ast_call_name(call)
        ast_calls = [n for n in _preorder(stmt) if isinstance(n, ast.Call)]
        ast_calls = [n for n in ast_calls if ast_call_name(n) == name]
        collector = _Calls()
        self.stmt(stmt).visit(collector)
        found = [n for n in collector.found if call_name(n) == name]
        if len(found) != len(ast_calls):
            raise LookupError(f"the calls of {name} at line {call.lineno} do not pair up")
        return found[ast_calls.index(call)]  # type: ignore[return-value]


def _preorder(node: ast.AST) -> Iterator[ast.AST]:
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _preorder(child)


class _Calls(cst.CSTVisitor):
    """Every call under a node, in source order."""

    def __init__(self) -> None:
        self.found: list[cst.Call] = []

    def visit_Call(self, node: cst.Call) -> bool:
        self.found.append(node)
        return True


def _pair(body: list[ast.stmt], suite: Any, pairs: dict[int, Any]) -> None:
    """Pair the statements of an ``ast`` block with those of the libcst suite holding them."""
    import libcst as cst

    stmts = iter(body)
    for node in suite.body:
        if isinstance(node, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            for small in node.body:
                pairs[id(next(stmts))] = small
            continue
        if isinstance(suite, cst.SimpleStatementSuite):  # a suite of small statements only
            pairs[id(next(stmts))] = node
            continue
        stmt = next(stmts)
        pairs[id(stmt)] = node
        _pair_children(stmt, node, pairs)


def _pair_children(stmt: ast.stmt, node: Any, pairs: dict[int, Any]) -> None:
    import libcst as cst

    if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        return  # a nested scope: never a place hdrfix edits
    if isinstance(node, cst.If):
        _pair(stmt.body, node.body, pairs)  # type: ignore[attr-defined]
        orelse = stmt.orelse  # type: ignore[attr-defined]
        if isinstance(node.orelse, cst.If):
            pairs[id(orelse[0])] = node.orelse
            _pair_children(orelse[0], node.orelse, pairs)
        elif isinstance(node.orelse, cst.Else):
            _pair(orelse, node.orelse.body, pairs)
    elif isinstance(node, (cst.For, cst.While)):
        _pair(stmt.body, node.body, pairs)  # type: ignore[attr-defined]
        if node.orelse is not None:
            _pair(stmt.orelse, node.orelse.body, pairs)  # type: ignore[attr-defined]
    elif isinstance(node, cst.With):
        _pair(stmt.body, node.body, pairs)  # type: ignore[attr-defined]
    elif isinstance(node, (cst.Try, cst.TryStar)):
        _pair(stmt.body, node.body, pairs)  # type: ignore[attr-defined]
        for a_handler, c_handler in zip(stmt.handlers, node.handlers):  # type: ignore[attr-defined]
            _pair(a_handler.body, c_handler.body, pairs)  # type: ignore[attr-defined]
        if node.orelse is not None:
            _pair(stmt.orelse, node.orelse.body, pairs)  # type: ignore[attr-defined]
        if node.finalbody is not None:
            _pair(stmt.finalbody, node.finalbody.body, pairs)  # type: ignore[attr-defined]
    elif isinstance(node, cst.Match):
        for a_case, c_case in zip(stmt.cases, node.cases):  # type: ignore[attr-defined]
            _pair(a_case.body, c_case.body, pairs)
