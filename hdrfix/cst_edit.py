"""Edits to one function as a single libcst pass: statements inserted after anchors, nodes swapped.

Nodes are matched by identity with the tree the phase analysed, so several edits planned on the
same tree land together and none shifts another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst


@dataclass
class FunctionEdit:
    after: dict[int, tuple[cst.CSTNode, list[cst.BaseStatement]]] = field(default_factory=dict)
    replace: dict[int, tuple[cst.CSTNode, cst.CSTNode]] = field(default_factory=dict)

    def insert_after(self, anchor: cst.CSTNode, *stmts: cst.BaseStatement) -> FunctionEdit:
        _, existing = self.after.get(id(anchor), (anchor, []))
        self.after[id(anchor)] = (anchor, existing + list(stmts))
        return self

    def swap(self, old: cst.CSTNode, new: cst.CSTNode) -> FunctionEdit:
        self.replace[id(old)] = (old, new)
        return self

    def __bool__(self) -> bool:
        return bool(self.after or self.replace)

    def merge(self, other: FunctionEdit) -> None:
        for anchor, stmts in other.after.values():
            self.insert_after(anchor, *stmts)
        self.replace.update(other.replace)

    def apply(self, fn: cst.FunctionDef) -> cst.FunctionDef:
        transformer = _Apply(self)
        result = fn.visit(transformer)
        missing = (set(self.after) | set(self.replace)) - transformer.applied
        if missing:
            raise LookupError(f"{len(missing)} planned edit(s) found no anchor in {fn.name.value}")
        assert isinstance(result, cst.FunctionDef)
        return result


class _Apply(cst.CSTTransformer):
    def __init__(self, edit: FunctionEdit) -> None:
        self.edit = edit
        self.applied: set[int] = set()

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):  # type: ignore[override]
        key = id(original)
        if key in self.edit.replace:
            self.applied.add(key)
            return self.edit.replace[key][1]
        if isinstance(original, cst.IndentedBlock) and isinstance(updated, cst.IndentedBlock):
            body: list[cst.BaseStatement] = []
            for old, new in zip(original.body, updated.body):
                body.append(new)
                if id(old) in self.edit.after:
                    self.applied.add(id(old))
                    body.extend(self.edit.after[id(old)][1])
            if len(body) != len(updated.body):
                return updated.with_changes(body=body)
        return updated
