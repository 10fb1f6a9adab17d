"""Applying a unified diff to a file that has changed since, by context (like ``patch``).

``revert --force-structural`` uses it to take back only hdrfix's own edit: each hunk is found
by its exact context lines wherever they now are, so the user's other edits stay. A hunk whose
context is gone, or found in more than one place, is an error naming the lines, never a guess.

Kept by hand (issue 21 item 6): the rule that matters here is "find the context anywhere, refuse
when it is found twice", which the diff libraries looked at do not offer: ``unidiff`` only
parses diffs; ``whatthepatch.apply_diff`` (1.0.7, read) applies each hunk only at the line it was
recorded at, so a file the user edited above the site fails, and it splits lines without their
endings. A library would only give the parse of ``@@`` headers, a few lines here, not worth a
dependency.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from hdrfix.lang.lines import NEWLINE

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")
# Each hunk is looked for in the whole file, so a diff's cost is its hunks times the file's
# lines: a journal can hold 20,000 hunks for a 20,000-line trainer (41 s; hours at 100,000).
# A phase's edit of one file is a few hunks, one per site.
MAX_HUNKS = 1000


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
    """``text`` with the diff's hunks applied where their context now is. Each line keeps its
    own ending; a line the hunk adds takes the ending of the line it replaces or follows."""
    bodies, ends = _split(text)
    offset = 0
    hunks = parse_hunks(diff)
    if len(hunks) > MAX_HUNKS:
        raise PatchConflict(
            1, f"the recorded diff has {len(hunks)} hunks, more than the {MAX_HUNKS} hdrfix takes"
        )
    for hunk in hunks:
        at = _locate(bodies, hunk, hunk.start - 1 + offset)
        old_ends = ends[at : at + len(hunk.old)]
        bodies[at : at + len(hunk.old)] = hunk.new
        ends[at : at + len(hunk.old)] = _ends_for(hunk, old_ends, _fallback(ends, at))
        offset = at + len(hunk.new) - (hunk.start - 1 + len(hunk.old))
    return "".join(body + end for body, end in zip(bodies, ends))


def _split(text: str) -> tuple[list[str], list[str]]:
    """Line bodies and their endings; the last line's ending is "" when the file lacks one
    (and an empty last body stands for the end of a file that ends with a newline)."""
    bodies = NEWLINE.split(text)
    ends = [m.group(0) for m in NEWLINE.finditer(text)] + [""]
    return bodies, ends


def _ends_for(hunk: Hunk, old_ends: list[str], fallback: str) -> list[str]:
    matcher = difflib.SequenceMatcher(None, hunk.old, hunk.new, autojunk=False)
    ends = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for k in range(j2 - j1):
            if tag == "insert" or not old_ends:
                source = old_ends[i1 - 1] if i1 > 0 else (old_ends[0] if old_ends else fallback)
            else:
                source = old_ends[min(i1 + k, i2 - 1)]
            ends.append(source or fallback)
    if ends and old_ends and old_ends[-1] == "" and hunk.new and hunk.old:
        ends[-1] = ""  # the hunk ends the file: still no ending after its last line
    return ends


def _fallback(ends: list[str], at: int) -> str:
    """The ending nearest ``at``, for a line that has no neighbour in its own hunk."""
    for end in reversed(ends[:at]):
        if end:
            return end
    return next((end for end in ends[at:] if end), "\n")


def _locate(lines: list[str], hunk: Hunk, expected: int) -> int:
    size = len(hunk.old)
    matches = [i for i in range(len(lines) - size + 1) if lines[i : i + size] == hunk.old]
    if not matches:
        raise PatchConflict(hunk.start, "the lines hdrfix wrote there were edited since")
    if len(matches) > 1:
        # Nearest is a guess: a copy of the function above it (a new test_step made from
        # validation_step) would lose its own lines instead of hdrfix's.
        first, second = sorted(matches, key=lambda i: abs(i - expected))[:2]
        where = " and ".join(str(i + 1) for i in sorted((first, second)))
        more = f" (and {len(matches) - 2} more)" if len(matches) > 2 else ""
        raise PatchConflict(
            hunk.start,
            f"the lines hdrfix wrote there now occur at lines {where}{more}; hdrfix does not "
            "guess which is its own",
        )
    return matches[0]
