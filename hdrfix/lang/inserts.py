"""New statements after ``ast`` statements of one function, planned before knowing whether
libcst is needed to make them.

A phase plans on ``ast`` (its analysis runs there) and names each new statement by its code.
Where the layout is plain the function's new text is spliced (:mod:`hdrfix.lang.splice`) and
libcst is never imported; elsewhere the same edit is made through libcst
(:class:`hdrfix.lang.cst.edit.FunctionEdit`), which keeps every other layout as before.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hdrfix.lang.splice import insert_after

if TYPE_CHECKING:
    import libcst as cst

    from hdrfix.lang.pyfile import FunctionRef, PyFile


@dataclass
class Inserts:
    after: dict[int, tuple[ast.stmt, list[str]]] = field(default_factory=dict)

    def insert_after(self, anchor: ast.stmt, *code: str) -> Inserts:
        """``code`` (one simple statement per string) on new lines right after ``anchor``."""
        _, existing = self.after.get(id(anchor), (anchor, []))
        self.after[id(anchor)] = (anchor, existing + list(code))
        return self

    def merge(self, other: Inserts) -> None:
        for anchor, code in other.after.values():
            self.insert_after(anchor, *code)

    def applied(self, pyfile: PyFile, ref: FunctionRef) -> str | cst.FunctionDef:
        """The function with the statements in: its text where the layout is plain, else
        libcst's node."""
        if not pyfile.is_edited(ref):
            text = insert_after(
                pyfile.source.text, pyfile.starts, (ref.start, ref.end), list(self.after.values())
            )
            if text is not None:
                return text
        return self.through_libcst(pyfile, ref)

    def through_libcst(self, pyfile: PyFile, ref: FunctionRef) -> cst.FunctionDef:
        import libcst as cst

        from hdrfix.lang.cst.edit import FunctionEdit
        from hdrfix.lang.cst.index import cst_index

        index = cst_index(pyfile, ref)
        edit = FunctionEdit()
        for anchor, code in self.after.values():
            edit.insert_after(index.stmt(anchor), *(cst.parse_statement(c) for c in code))
        return edit.apply(pyfile.cst(ref))
