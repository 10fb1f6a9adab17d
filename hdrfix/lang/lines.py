"""Line offsets as Python's tokenizer counts lines (\\r\\n, \\r and \\n; not \\f or \\u2028)."""

from __future__ import annotations

import re

NEWLINE = re.compile(r"\r\n|\r|\n")


def line_starts(text: str) -> list[int]:
    """Offset of the first character of each line; ``starts[n - 1]`` is line n."""
    return [0] + [m.end() for m in NEWLINE.finditer(text)]


def newline_of(text: str) -> str:
    match = NEWLINE.search(text)
    return match.group(0) if match else "\n"
