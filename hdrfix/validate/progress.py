"""Progress for a run whose stderr is no terminal (CI, a pipe): a plain line now and then.

A progress bar there would be one long line of carriage returns, or nothing until the end; a
run takes 30-100 s, which is long enough for a CI job to look hung. So instead, at most every
``interval`` seconds: ``validate: phase1 step 12/40, 18 s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class StepLines:
    """An ``on_step(variant, step)`` callback for :func:`hdrfix.validate.run.run`."""

    def __init__(
        self,
        stream: TextIO,
        steps: int,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.steps = steps
        self.interval = interval
        self.clock = clock
        self.started = self.last = clock()

    def __call__(self, name: str, step: int) -> None:
        now = self.clock()
        if now - self.last < self.interval:
            return
        self.last = now
        # flush: the reader is a log collector that may buffer until the process ends
        print(
            f"validate: {name} step {step + 1}/{self.steps}, {now - self.started:.0f} s",
            file=self.stream,
            flush=True,
        )
