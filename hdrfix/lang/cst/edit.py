"""Edits to one function as a single libcst pass: statements inserted after anchors, nodes swapped.

Nodes are matched by identity with the tree the phase analysed, so several edits planned on the
same tree land together and none shifts another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import libcst as cst

from hdrfix.lang.cst.match import children

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import FunctionRef, PyFile


@dataclass
class FunctionEdit:
    after: dict[int, tuple[cst.CSTNode, list[cst.BaseStatement]]] = field(default_factory=dict)
    replace: dict[int, tuple[cst.CSTNode, cst.CSTNode]] = field(default_factory=dict)
    before: dict[int, tuple[cst.CSTNode, list[cst.BaseStatement]]] = field(default_factory=dict)

    def insert_before(self, anchor: cst.CSTNode, *stmts: cst.BaseStatement) -> FunctionEdit:
        """``stmts`` right before ``anchor``, a statement of an indented block."""
        _, existing = self.before.get(id(anchor), (anchor, []))
        self.before[id(anchor)] = (anchor, existing + list(stmts))
        return self

    def insert_after(self, anchor: cst.CSTNode, *stmts: cst.BaseStatement) -> FunctionEdit:
        _, existing = self.after.get(id(anchor), (anchor, []))
        self.after[id(anchor)] = (anchor, existing + list(stmts))
        return self

    def swap(self, old: cst.CSTNode, new: cst.CSTNode) -> FunctionEdit:
        self.replace[id(old)] = (old, new)
        return self

    def __bool__(self) -> bool:
        return bool(self.after or self.replace or self.before)

    def merge(self, other: FunctionEdit) -> None:
        for anchor, stmts in other.after.values():
            self.insert_after(anchor, *stmts)
        for anchor, stmts in other.before.values():
            self.insert_before(anchor, *stmts)
        self.replace.update(other.replace)

    def applied(self, pyfile: PyFile, ref: FunctionRef) -> cst.FunctionDef:
        """The edited function as it stands in ``pyfile`` (the interface of
        :class:`hdrfix.lang.inserts.Inserts`)."""
        return self.apply(pyfile.cst(ref))

    def apply(self, fn: cst.FunctionDef) -> cst.FunctionDef:
        targets = set(self.after) | set(self.replace) | set(self.before)
        transformer = _Apply(self, _on_paths(fn, targets))
        result = fn.visit(transformer)
        missing = (set(self.after) | set(self.replace) | set(self.before)) - transformer.applied
        if missing:
            raise LookupError(f"{len(missing)} planned edit(s) found no anchor in {fn.name.value}")
        assert isinstance(result, cst.FunctionDef)
        return result


def _on_paths(fn: cst.FunctionDef, targets: set[int]) -> set[int]:
    """The ids of every node on the way from the function to an edited node: the only subtrees
    the transformer needs to rebuild (rebuilding every node costs more than the whole plan).
    Read from the nodes' fields: a libcst visitor would rebuild the whole function to find them."""
    parent: dict[int, int] = {}
    stack: list[cst.CSTNode] = [fn]
    while stack:
        node = stack.pop()
        for child in children(node):
            parent[id(child)] = id(node)
            stack.append(child)
    on_path: set[int] = set()
    for target in targets:
        key: int | None = target
        while key is not None and key not in on_path:
            on_path.add(key)
            key = parent.get(key)
    return on_path


class _Apply(cst.CSTTransformer):
    def __init__(self, edit: FunctionEdit, on_path: set[int]) -> None:
        self.edit = edit
        self.on_path = on_path
        self.applied: set[int] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        return id(node) in self.on_path

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):  # type: ignore[override]
        key = id(original)
        if key in self.edit.replace:
            self.applied.add(key)
            return self.edit.replace[key][1]
        if isinstance(original, cst.IndentedBlock) and isinstance(updated, cst.IndentedBlock):
            body: list[cst.BaseStatement] = []
            old: Any
            for old, new in zip(original.body, updated.body):
                first = id(old.body[0]) if isinstance(old, cst.SimpleStatementLine) else id(old)
                key = id(old) if id(old) in self.edit.before else first
                if key in self.edit.before:
                    self.applied.add(key)
                    stmts: list[Any] = self.edit.before[key][1]
                    # the anchor's comments and blank lines stay above what goes before it
                    body.append(stmts[0].with_changes(leading_lines=old.leading_lines))
                    body.extend(stmts[1:])
                    new = new.with_changes(leading_lines=[])
                body.append(new)
                # A small statement ending its line: the new statements go on lines after it.
                keys = [id(old)]
                if isinstance(old, cst.SimpleStatementLine):
                    keys.append(id(old.body[-1]))
                for key in keys:
                    if key in self.edit.after:
                        self.applied.add(key)
                        body.extend(self.edit.after[key][1])
            if len(body) != len(updated.body):
                return updated.with_changes(body=body)
        if isinstance(original, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            return self._inline(original, updated)
        return updated

    def _inline(self, original, updated):
        """After a small statement inside a line (``a = 1; b = 2``, ``if c: x = 1``), the new
        statements join that line, so they run exactly after it."""
        smalls: list[cst.BaseSmallStatement] = []
        last = len(original.body) - 1
        for i, (old, new) in enumerate(zip(original.body, updated.body)):
            smalls.append(new)
            inline = isinstance(original, cst.SimpleStatementSuite) or i < last
            if id(old) in self.edit.after and inline:
                self.applied.add(id(old))
                for stmt in self.edit.after[id(old)][1]:
                    if not isinstance(stmt, cst.SimpleStatementLine):
                        raise LookupError("a compound statement cannot follow one on its line")
                    smalls.extend(stmt.body)
        if len(smalls) == len(updated.body):
            return updated
        fixed = [
            s.with_changes(semicolon=cst.Semicolon(whitespace_after=cst.SimpleWhitespace(" ")))
            if i < len(smalls) - 1
            else s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            for i, s in enumerate(smalls)
        ]
        return updated.with_changes(body=fixed)
