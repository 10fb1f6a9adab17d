"""A line-level three-way merge, for taking one phase's edit out from under a later one.

``merge(base, ours, theirs)`` applies both sides' changes to ``base`` when they touch separate
lines, and returns None when they touch the same ones. difflib finds each side's changes; what
is written here is only the rule for when two changes are independent: their replaced line
ranges of ``base`` do not overlap, and they do not both insert at the same place (whose order
would be a guess). A pure insertion at the edge of the other side's range is independent: it
goes before or after that range, as its position says. Lines keep their own endings, so a
CRLF line stays CRLF in a file that mixes endings.

Why not ``merge3`` (Breezy's diff3 merge, on PyPI): it groups changes that touch or abut into one
region and reports that region as a conflict when both sides changed it. Revert's common case is
exactly that: a later phase (or the user) edited the line right next to the one being taken out,
or inserted a line beside it. With merge3 both cases come back as conflicts (checked with
merge3 1.0.0; tests/test_threeway.py holds the two cases), so revert would refuse what it reverts
today. Post-processing merge3's conflict regions with the rule below would be this module again.
"""

from __future__ import annotations

import difflib
import re

_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")

# (start, end, replacement): lines base[start:end] become the replacement
_Change = tuple[int, int, tuple[bytes, ...]]


def lines(data: bytes) -> list[bytes]:
    return _LINE.findall(data)


def merge(base: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    base_lines = lines(base)
    mine = _changes(base_lines, lines(ours))
    yours = _changes(base_lines, lines(theirs))
    if any(a != b and _touch(a, b) for a in mine for b in yours):
        return None
    out: list[bytes] = []
    at = 0
    for start, end, new in sorted(set(mine) | set(yours), key=lambda c: (c[0], c[1])):
        out.extend(base_lines[at:start])
        out.extend(new)
        at = end
    out.extend(base_lines[at:])
    return b"".join(out)


def _changes(base: list[bytes], other: list[bytes]) -> list[_Change]:
    matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
    return [
        (i1, i2, tuple(other[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def _touch(a: _Change, b: _Change) -> bool:
    (a0, a1, _), (b0, b1, _) = a, b
    if max(a0, b0) < min(a1, b1):
        return True  # both replace some of the same lines
    if a0 == a1 and b0 == b1:
        return a0 == b0  # two insertions at one place: their order would be a guess
    if a0 == a1:
        return b0 < a0 < b1
    if b0 == b1:
        return a0 < b0 < a1
    return False
