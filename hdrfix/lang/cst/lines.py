"""Line numbers of nodes inside one parsed function.

A statement's line comes from the ``ast`` statement it pairs with (:mod:`hdrfix.lang.cst.index`),
which costs nothing more; libcst's position metadata prints the whole function to find a line
(a sixth of a ``status`` on the fixture), so it is asked only for what is not a statement of the
function as parsed (an expression, or a function an earlier edit in this plan changed).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from hdrfix.lang.cst.index import cst_index
from hdrfix.lang.pyfile import FunctionRef

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import PyFile


class FunctionLines:
    def __init__(self, ref: FunctionRef, fn: cst.FunctionDef, pyfile: PyFile | None = None):
        self.ref = ref
        self.fn = fn
        self._positions: Any = None  # resolved on the first question only they can answer
        self._statements: dict[int, int] = {}
        if pyfile is not None and not pyfile.is_edited(ref) and pyfile.cst(ref) is fn:
            index = cst_index(pyfile, ref)
            lines = {id(s): s.lineno for s in ast.walk(index.ast_fn) if isinstance(s, ast.stmt)}
            self._statements = {id(node): lines[key] for key, node in index.pairs.items()}

    def line(self, node: cst.CSTNode) -> int:
        """The file line of ``node``'s first token (as the function stands in this run)."""
        small = node.body[0] if isinstance(node, cst.SimpleStatementLine) and node.body else node
        # a definition's ast line is its ``def``, libcst's its first decorator: not paired
        if not isinstance(small, (cst.FunctionDef, cst.ClassDef)):
            paired = self._statements.get(id(small))
            if paired is not None:
                return paired
        if self._positions is None:
            wrapper = MetadataWrapper(cst.Module(body=[self.fn]), unsafe_skip_copy=True)
            self._positions = wrapper.resolve(PositionProvider)
        return self.ref.line + self._positions[node].start.line - 1
