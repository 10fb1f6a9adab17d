"""Line numbers of nodes inside one parsed function (cheap: metadata over that function only)."""

from __future__ import annotations

from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from hdrfix.lang.pyfile import FunctionRef


class FunctionLines:
    def __init__(self, ref: FunctionRef, fn: cst.FunctionDef) -> None:
        self.ref = ref
        self.fn = fn
        self._positions: Any = None  # resolved on the first question: it prints the function

    def line(self, node: cst.CSTNode) -> int:
        """The file line of ``node``'s first token (as the function stands in this run)."""
        if self._positions is None:
            wrapper = MetadataWrapper(cst.Module(body=[self.fn]), unsafe_skip_copy=True)
            self._positions = wrapper.resolve(PositionProvider)
        return self.ref.line + self._positions[node].start.line - 1
