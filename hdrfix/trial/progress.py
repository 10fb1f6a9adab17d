"""trial's progress on stderr: which cell of how many, and the time left.

A cell is one variant trained in one mode; every cell trains the same number of steps of the
same batches, so the time left is the mean time per cell times the cells left. The first cell
also pays for importing torch's and Lightning's lazy parts and the trainer (seconds, once):
it is left out of the mean, and no time is guessed before a second cell has ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO


class CellLines:
    """``trial: [3/8] phase1 log: trains, 0.9 s; about 5 s left`` per cell; nothing when quiet."""

    def __init__(
        self,
        stream: TextIO,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.quiet = quiet
        self.clock = clock
        self.total = 0
        self.done = 0
        self.started = self.first_ended = clock()

    def start(self, total: int) -> None:
        """The cells are known (variants that apply, times modes): the clock starts now."""
        self.total = total
        self.done = 0
        self.started = self.clock()

    def left(self, now: float) -> float | None:
        """Seconds left, from the cells after the first; None until there is one."""
        if self.done < 2:
            return None
        return (now - self.first_ended) / (self.done - 1) * (self.total - self.done)

    def __call__(self, cell: Any) -> None:
        now = self.clock()
        self.done += 1
        if self.done == 1:
            self.first_ended = now
        if self.quiet:
            return
        what = "trains" if cell.outcome.trains else "does not train"
        if cell.unset is not None:
            what = "mode not set"
        left = self.left(now)
        if self.done == self.total:
            tail = f"; {now - self.started:.0f} s in all"
        else:
            tail = "" if left is None else f"; about {left:.0f} s left"
        print(
            f"trial: [{self.done}/{self.total}] {cell.variant} {cell.mode}: {what}, "
            f"{cell.seconds:.1f} s{tail}",
            file=self.stream,
            flush=True,
        )
