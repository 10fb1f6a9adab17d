"""Large files: parsing only the top-level entry that holds the section asked about, and
reporting errors there at the whole file's line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hdrfix.lang.yamledit.breaks import _line_of_offset
from hdrfix.lang.yamledit.loading import YamlEditError, load_all

# Above this size only the top-level entry holding the section is parsed: ruamel's pure-Python
# parser needs seconds per megabyte, and a 10 MB config should not cost minutes.
LARGE = 256 * 1024
_DOC_MARKER = re.compile(r"^(?:---|\.\.\.)(?:\s|$)", re.M)
_TOP_KEY = re.compile(r"^[^\s#\-?:,\[\]{}&*!|>'\"%@`][^\r\n]*?:(?:[ \t]|\r?$)", re.M)
_REFERENCES = re.compile(r"[&*][^\s,\[\]{}]|<<\s*:")


def _narrow(text: str, path: str, dotted: str) -> tuple[int, int, int]:
    """(start, end, lines before start) of the top-level entry named by ``dotted``'s first part.

    Only for large single-document block mappings whose entry for that key stands alone (no
    anchors, aliases or merges inside it, so it means the same parsed on its own); anything
    else gets ``(0, len(text), 0)``: the whole text is parsed.
    """
    whole = 0, len(text), 0
    if len(text) <= LARGE or _DOC_MARKER.search(text):
        return whole
    top = dotted.split(".")[0]
    tops = list(_TOP_KEY.finditer(text))
    named = [i for i, m in enumerate(tops) if m.group(0).split(":")[0].strip() == top]
    if len(named) != 1:
        return whole
    start = tops[named[0]].start()
    end = tops[named[0] + 1].start() if named[0] + 1 < len(tops) else len(text)
    if (start, end) == whole[:2] or _REFERENCES.search(text, start, end):
        return whole
    # The cut guesses top-level boundaries from lines alone, and a flow collection or a quoted
    # string may go on at column 0 with lines that look like keys. A cut inside one leaves it
    # unclosed in the slice, which then does not parse; the whole text is parsed instead.
    # (The slice's parse is cached for the caller.)
    try:
        docs = load_all(text[start:end], path)
    except YamlEditError:
        return whole
    if len(docs) != 1 or not isinstance(docs[0], Mapping) or top not in docs[0]:
        return whole
    return start, end, _line_of_offset(text, start) - 1


def _shifted(lines: int, call: Any) -> Any:
    """Run ``call`` on a slice of a file, reporting errors at the file's own line numbers."""
    if not lines:
        return call()
    try:
        return call()
    except YamlEditError as exc:
        raise YamlEditError(exc.message, exc.path, (exc.line or 1) + lines, exc.hint) from None
