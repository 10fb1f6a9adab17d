"""Line offsets as Python's tokenizer counts lines (\\r\\n, \\r and \\n; not \\f or \\u2028)."""

from __future__ import annotations

import re
from collections.abc import Sequence

NEWLINE = re.compile(r"\r\n|\r|\n")


def line_starts(text: str) -> list[int]:
    """Offset of the first character of each line; ``starts[n - 1]`` is line n."""
    return [0] + [m.end() for m in NEWLINE.finditer(text)]


def newline_of(text: str) -> str:
    match = NEWLINE.search(text)
    return match.group(0) if match else "\n"


def line_opcodes(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, int, int, int, int]]:
    """``difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()``, matched only
    between the lines the two have in common at their head and tail.

    An edit touches a few functions of a long file; the lines before the first change and
    after the last are equal as they stand, and matching every line of a 3,000-line file
    (whose blank and ``return`` lines each occur hundreds of times) cost a tenth of a second.
    """
    import difflib

    head = 0
    most = min(len(a), len(b))
    while head < most and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < most - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle = difflib.SequenceMatcher(
        None, a[head : len(a) - tail], b[head : len(b) - tail], autojunk=False
    ).get_opcodes()
    ops = [("equal", 0, head, 0, head)] if head else []
    ops += [(tag, i1 + head, i2 + head, j1 + head, j2 + head) for tag, i1, i2, j1, j2 in middle]
    if tail:
        ops.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return ops
