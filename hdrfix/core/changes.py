"""A run's edits: shown as a unified diff and checked; :mod:`hdrfix.core.commit` writes them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from hdrfix.lang.errors import HdrfixError, shown
from hdrfix.lang.lines import NEWLINE
from hdrfix.lang.sourcefile import SourceFile


@dataclass(frozen=True)
class FileChange:
    """A file as read (``source``) and the text a run would give it."""

    source: SourceFile
    new_text: str

    @property
    def new_bytes(self) -> bytes:
        """The new text in the file's own encoding (and BOM)."""
        return self.source.encode(self.new_text)

    @property
    def rel(self) -> str:
        return self.source.rel

    def diff(self) -> str:
        return unified_diff(self.rel, self.source.text, self.new_text)


def unified_diff(rel: str, old: str, new: str) -> str:
    """git-style diff with ``a/``/``b/`` paths; line endings are not shown, as in git."""
    old_lines = NEWLINE.split(old)
    new_lines = NEWLINE.split(new)
    if old_lines[-1] == new_lines[-1] == "":
        # both end with a newline: the split's empty last item is no line of the file
        old_lines, new_lines = old_lines[:-1], new_lines[:-1]
    name = shown(rel)
    lines = difflib.unified_diff(old_lines, new_lines, f"a/{name}", f"b/{name}", lineterm="", n=3)
    return "".join(line + "\n" for line in lines)


def verify_parses(changes: Iterable[FileChange]) -> None:
    """Every edited file must still parse and encode; a failure here is never written."""
    from ruamel.yaml import YAML, YAMLError

    from hdrfix.lang.pyfile import parse_tree
    from hdrfix.lang.yamledit import LARGE

    for change in changes:
        try:
            change.source.encode(change.new_text)
        except UnicodeEncodeError as exc:
            line = change.new_text[: exc.start].count("\n") + 1
            raise HdrfixError(
                f"the edit holds {exc.object[exc.start : exc.end]!r}, which the file's "
                f"encoding ({change.source.encoding}) cannot hold",
                change.rel,
                line,
                hint="save the file as UTF-8, or declare an encoding that holds it; nothing "
                "was written",
            ) from None
        try:
            if change.rel.endswith(".py"):
                parse_tree(change.new_text, change.rel)
            elif change.rel.endswith((".yaml", ".yml")) and len(change.new_text) <= LARGE:
                # (A large file was edited inside one entry that yamledit re-parsed already.)
                list(YAML(typ="safe", pure=True).load_all(change.new_text))
        except (SyntaxError, YAMLError) as exc:
            at: int | None = getattr(exc, "lineno", None)
            lines = change.new_text.splitlines()
            shown = f": `{lines[at - 1].strip()}`" if at and 0 < at <= len(lines) else ""
            raise HdrfixError(
                f"internal error: the edited file would not parse ({exc}){shown}",
                change.rel,
                at,
                hint="nothing was written; make that change by hand",
            ) from None


def decoded(source: SourceFile, data: bytes) -> str:
    """``data`` read as ``source`` is read (its encoding, its BOM if it has one)."""
    if source.bom and data.startswith(source.bom):
        data = data[len(source.bom) :]
    return data.decode(source.encoding)
