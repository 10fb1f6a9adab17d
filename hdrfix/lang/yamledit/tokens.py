"""Scanner tokens found by the loader's (line, column), and edits as offsets into the
original text, applied in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.tokens import (
    BlockEndToken,
    BlockMappingStartToken,
    BlockSequenceStartToken,
    FlowMappingEndToken,
    FlowMappingStartToken,
    FlowSequenceEndToken,
    FlowSequenceStartToken,
    Token,
)

from hdrfix.lang.yamledit.breaks import _line_of_offset
from hdrfix.lang.yamledit.loading import YamlEditError


@dataclass(frozen=True)
class _Edit:
    """Replace ``text[start:end]`` (offsets into the original text) by ``new``."""

    start: int
    end: int
    new: str


class _Tokens:
    """Scanner tokens of a text, found by the (line, column) the round-trip loader reports."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.tokens: list[Token] = list(YAML(typ="safe", pure=True).scan(text))
        self._at: dict[tuple[int, int], int] = {}
        for i, tok in enumerate(self.tokens):
            self._at.setdefault((tok.start_mark.line, tok.start_mark.column), i)

    def index_at(self, line: int, column: int) -> int:
        """Index of the first token starting at (line, column), both 0-based."""
        try:
            return self._at[(line, column)]
        except KeyError:
            raise YamlEditError(
                "internal error: no YAML token where the parser put a key or mapping",
                self.path,
                line + 1,
                "edit this file by hand and report the bug",
            ) from None

    def start(self, tok: Token) -> int:
        return int(tok.start_mark.index)

    def end(self, tok: Token) -> int:
        return int(tok.end_mark.index)


def _closing(toks: list[Token], i: int) -> int:
    """Index of the token closing the block or flow collection opened at ``toks[i]``."""
    opening = (
        BlockMappingStartToken,
        BlockSequenceStartToken,
        FlowMappingStartToken,
        FlowSequenceStartToken,
    )
    closing = (BlockEndToken, FlowMappingEndToken, FlowSequenceEndToken)
    depth = 0
    for j in range(i, len(toks)):
        if isinstance(toks[j], opening):
            depth += 1
        elif isinstance(toks[j], closing):
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def _apply(text: str, edits: Iterable[_Edit], path: str) -> str:
    """Apply non-overlapping edits, given as offsets into the original text."""
    out: list[str] = []
    pos = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        if edit.start < pos:
            raise YamlEditError(
                "internal error: overlapping YAML edits",
                path,
                _line_of_offset(text, edit.start),
                "edit this file by hand and report the bug",
            )
        out.append(text[pos : edit.start])
        out.append(edit.new)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)
