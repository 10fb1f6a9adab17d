"""Applying a unified diff to a file that has changed since, by context (like ``patch``).

``revert --force-structural`` uses it to take back only hdrfix's own edit: each hunk is found
by its exact context lines wherever they now are, so the user's other edits stay. A hunk whose
context is gone or ambiguous is an error, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hdrfix.lines import NEWLINE, newline_of

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


@dataclass
class Hunk:
    start: int  # 1-based line in the file the diff was made against
    old: list[str]
    new: list[str]


def parse_hunks(diff: str) -> list[Hunk]:
    hunks: list[Hunk] = []
    for line in diff.splitlines():
        match = _HUNK.match(line)
        if match:
            hunks.append(Hunk(int(match.group(1)), [], []))
        elif hunks and line[:1] in {" ", "-", "+"} and not line.startswith(("---", "+++")):
            kind, body = line[0], line[1:]
            if kind in " -":
                hunks[-1].old.append(body)
            if kind in " +":
                hunks[-1].new.append(body)
    return hunks


class PatchConflict(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line


def apply_diff(text: str, diff: str) -> str:
    newline = newline_of(text)
    lines = NEWLINE.split(text)
    offset = 0
    for hunk in parse_hunks(diff):
        at = _locate(lines, hunk, hunk.start - 1 + offset)
        lines[at : at + len(hunk.old)] = hunk.new
        offset = at + len(hunk.new) - (hunk.start - 1 + len(hunk.old))
    return newline.join(lines)


def _locate(lines: list[str], hunk: Hunk, expected: int) -> int:
    size = len(hunk.old)
    matches = [i for i in range(len(lines) - size + 1) if lines[i : i + size] == hunk.old]
    if not matches:
        raise PatchConflict(hunk.start, "the lines hdrfix wrote there were edited since")
    if len(matches) > 1:
        nearest = sorted(matches, key=lambda i: abs(i - expected))
        if abs(nearest[0] - expected) == abs(nearest[1] - expected):
            raise PatchConflict(hunk.start, "the lines hdrfix wrote there now occur twice")
        return nearest[0]
    return matches[0]
