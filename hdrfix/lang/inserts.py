"""New statements after ``ast`` statements of one function, and new values of its assignments,
planned before knowing whether libcst is needed to make them.

A phase plans on ``ast`` (its analysis runs there) and names each new statement or value by its
code. Where the layout is plain the function's new text is spliced (:mod:`hdrfix.lang.splice`)
and libcst is never imported; elsewhere the same edit is made through libcst
(:class:`hdrfix.lang.cst.edit.FunctionEdit`), which keeps every other layout as before.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hdrfix.lang.splice import spliced

if TYPE_CHECKING:
    import libcst as cst

    from hdrfix.lang.cst.edit import FunctionEdit
    from hdrfix.lang.pyfile import FunctionRef, PyFile


@dataclass
class Inserts:
    after: dict[int, tuple[ast.stmt, list[str]]] = field(default_factory=dict)
    values: dict[int, tuple[ast.Assign, str]] = field(default_factory=dict)

    def insert_after(self, anchor: ast.stmt, *code: str) -> Inserts:
        """``code`` (one simple statement per string) on new lines right after ``anchor``."""
        _, existing = self.after.get(id(anchor), (anchor, []))
        self.after[id(anchor)] = (anchor, existing + list(code))
        return self

    def replace_value(self, root: ast.Assign, code: str) -> Inserts:
        """``root``'s value (the whole expression right of its last ``=``) becomes ``code``."""
        self.values[id(root)] = (root, code)
        return self

    def merge(self, other: Inserts) -> None:
        for anchor, code in other.after.values():
            self.insert_after(anchor, *code)
        self.values.update(other.values)

    def applied(self, pyfile: PyFile, ref: FunctionRef) -> str | cst.FunctionDef:
        """The function with the edits in: its text where the layout is plain, else libcst's
        node."""
        if not pyfile.is_edited(ref):
            text = spliced(
                pyfile.source.text,
                pyfile.starts,
                (ref.start, ref.end),
                list(self.after.values()),
                list(self.values.values()),
            )
            if text is not None:
                return text
        return self.through_libcst(pyfile, ref)

    def through_libcst(self, pyfile: PyFile, ref: FunctionRef) -> cst.FunctionDef:
        return self.function_edit(pyfile, ref).apply(pyfile.cst(ref))

    def function_edit(self, pyfile: PyFile, ref: FunctionRef) -> FunctionEdit:
        """The same edits as libcst's, for a function that an edit through libcst shares."""
        import libcst as cst

        from hdrfix.lang.cst.edit import FunctionEdit
        from hdrfix.lang.cst.index import cst_index

        index = cst_index(pyfile, ref)
        edit = FunctionEdit()
        for anchor, codes in self.after.values():
            edit.insert_after(index.stmt(anchor), *(cst.parse_statement(c) for c in codes))
        for root, value in self.values.values():
            edit.swap(index.value(root), cst.parse_expression(value))
        return edit
