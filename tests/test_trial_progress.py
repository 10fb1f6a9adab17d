"""trial's progress lines: the cell of how many, and a time left that the cells after the first
(which pays for the imports) predict."""

from __future__ import annotations

import io
from types import SimpleNamespace

from hdrfix.trial.progress import CellLines


def _cell(variant: str, mode: str, seconds: float, trains: bool = True):
    return SimpleNamespace(
        variant=variant, mode=mode, seconds=seconds, unset=None,
        outcome=SimpleNamespace(trains=trains),
    )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_time_left_comes_from_the_cells_after_the_first():
    clock, out = Clock(), io.StringIO()
    lines = CellLines(out, clock=clock)
    lines.start(4)
    for seconds, mode in ((9.0, "log"), (2.0, "global"), (2.0, "per_patch"), (2.0, "none")):
        clock.now += seconds
        lines(_cell("base", mode, seconds, trains=mode != "global"))
    assert out.getvalue().splitlines() == [
        "trial: [1/4] base log: trains, 9.0 s",
        "trial: [2/4] base global: does not train, 2.0 s; about 4 s left",
        "trial: [3/4] base per_patch: trains, 2.0 s; about 2 s left",
        "trial: [4/4] base none: trains, 2.0 s; 15 s in all",
    ]


def test_quiet_prints_nothing():
    out = io.StringIO()
    lines = CellLines(out, quiet=True, clock=Clock())
    lines.start(2)
    lines(_cell("base", "log", 1.0))
    assert out.getvalue() == ""
