"""Line numbers on disk for what a later phase of a run says about a file an earlier phase
edited (issue 18, item 6).

A phase reads the file as the phases before it left it (``apply phase1 phase2``: phase2 sees
phase1's clamps), so its items and refusals count lines in that text. The user reads the file
on disk: each line is mapped back through the difference between the two texts. A line an
earlier phase inserted has no line on disk; it is reported at the line before it (the statement
the insertion follows), which is where the user looks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from hdrfix.lang.lines import NEWLINE, line_opcodes

if TYPE_CHECKING:
    from hdrfix.core.plugin import PhasePlan
    from hdrfix.lang.errors import HdrfixError


class LineMap:
    """From lines of ``current`` (a run's text of a file) to lines of ``original`` (on disk)."""

    def __init__(self, original: str, current: str) -> None:
        old, new = NEWLINE.split(original), NEWLINE.split(current)
        self._map: dict[int, int] = {}
        for tag, i1, i2, j1, j2 in line_opcodes(old, new):
            for k in range(j2 - j1):
                # equal and rewritten lines map one to one; inserted ones to the line before
                same = tag == "equal" or (tag == "replace" and k < i2 - i1)
                self._map[j1 + k + 1] = i1 + k + 1 if same else max(i1, 1)

    def __call__(self, line: int | None) -> int | None:
        return line if line is None else self._map.get(line, line)


def on_disk(plan: PhasePlan, maps: Mapping[str, LineMap]) -> None:
    """Renumber ``plan``'s items, listings and refusal for the files in ``maps``."""
    for attr in ("items", "not_patched", "unhandled"):
        setattr(
            plan,
            attr,
            [
                replace(i, line=maps[i.path](i.line)) if i.path in maps else i
                for i in getattr(plan, attr)
            ],
        )
    if plan.refusal is not None:
        error_on_disk(plan.refusal, maps)


def error_on_disk(error: HdrfixError, maps: Mapping[str, LineMap]) -> HdrfixError:
    if error.path is not None and error.path in maps:
        error.line = maps[error.path](error.line)
    return error
