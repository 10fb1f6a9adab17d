"""validate's progress: which variant of how many, its step, the time so far and the time left.

On a terminal it is one line, rewritten in place a few times a second and cleared at the end;
elsewhere (CI, a pipe) a plain line at most every ``interval`` seconds, since a carriage-return
bar there is one endless line, or nothing until the end, and a run long enough to look hung.

The time left is the work left (training steps, then the rounds of the step timing, in which
every variant takes one step) at the pace measured since the first step. The setup before it
(patching, imports, the synthetic frames, starting the workers) is not counted: it happens
once, and counted as if every step cost as much it made the estimate minutes for a 16 s run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TextIO

#: Seconds between redraws of the line on a terminal.
REDRAW_S = 0.2
#: The time left is shown once the steps have run this long: a shorter pace says little.
PACE_AFTER_S = 0.5


def clock_text(seconds: float) -> str:
    """``42 s``; ``2:46`` from a minute on; ``1:02:03`` from an hour on."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}:{secs:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """The ``step(variant, step)`` and ``timing(round)`` callbacks of
    :func:`hdrfix.validate.run.run`."""

    def __init__(
        self,
        stream: TextIO,
        names: Sequence[str],
        steps: int,
        timing_rounds: int,
        *,
        terminal: bool,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.names = list(names)
        self.steps = steps
        self.timing_rounds = timing_rounds
        self.terminal = terminal
        self.interval = REDRAW_S if terminal else interval
        self.clock = clock
        self.total = len(self.names) * (steps + timing_rounds)
        self.done = 0
        self.started = clock()
        self.first: float | None = None  # when the first step was done
        self.counted = 0  # units done by then, which the pace leaves out
        self.last: float | None = None
        self.width = 0

    def step(self, name: str, step: int) -> None:
        index = self.names.index(name) + 1 if name in self.names else 0
        self._advance(
            1, f"{name} (variant {index} of {len(self.names)}) step {step + 1}/{self.steps}"
        )

    def timing(self, round_: int) -> None:
        self._advance(
            len(self.names),
            f"timing the steps, the variants taking turns: round {round_ + 1}/{self.timing_rounds}",
        )

    def _advance(self, units: int, what: str) -> None:
        now = self.clock()
        self.done += units
        if self.first is None:
            self.first = now
            self.counted = self.done  # the first report's units fall before the pace's clock
        finished = self.done >= self.total
        # off a terminal, the first line comes after an interval too, as every later one
        since = self.started if self.last is None and not self.terminal else self.last
        if since is not None and now - since < self.interval and not finished:
            return
        self.last = now
        self._show(f"validate: {what}, {clock_text(now - self.started)}{self._left(now)}")

    def _left(self, now: float) -> str:
        paced = self.done - self.counted
        if self.first is None or paced <= 0 or now - self.first < PACE_AFTER_S:
            return ""
        left = (self.total - self.done) * (now - self.first) / paced
        return f", about {clock_text(left)} left"

    def _show(self, line: str) -> None:
        if self.terminal:
            pad = " " * max(0, self.width - len(line))
            self.stream.write("\r" + line + pad)
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        # the reader may be a log collector that buffers until the process ends
        self.stream.flush()

    def close(self) -> None:
        """Clear the line on a terminal, so that the table starts at the left margin."""
        if self.terminal and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0
