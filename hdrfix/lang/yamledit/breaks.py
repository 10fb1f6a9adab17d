"""Line breaks and line numbers the way the YAML scanner counts them, and the line ending
an inserted line gets.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from hdrfix.lang.lines import NEWLINE

_BREAKS: Final = "\r\n\x85\u2028\u2029"  # what the YAML scanner treats as line breaks


def _line_of_offset(text: str, offset: int) -> int:
    # Count line breaks the way the YAML scanner does: '\r\n' once, or any one of _BREAKS.
    head = text[:offset].replace("\r\n", "\n")
    return sum(head.count(ch) for ch in _BREAKS) + 1


def _has_break(fragment: str) -> bool:
    return any(ch in fragment for ch in _BREAKS)


def _ending_before(text: str, at: int) -> str:
    """The line break ending just before ``at``: an inserted line ends like the line it follows."""
    if text.endswith("\r\n", 0, at):
        return "\r\n"
    if at and text[at - 1] in _BREAKS:
        return text[at - 1]
    return _dominant_eol(text)


def _dominant_eol(text: str) -> str:
    """The most common line ending in ``text``: CRLF, CR or LF (LF when it has none)."""
    counts = Counter(NEWLINE.findall(text))
    return counts.most_common(1)[0][0] if counts else "\n"
