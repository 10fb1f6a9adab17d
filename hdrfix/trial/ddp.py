"""A cell under Lightning's own DDP: the ranks Lightning starts, checked as DDP needs them.

Lightning's ``ddp`` launcher re-runs the command line (``sys.argv``) once per extra rank, so each
rank would redo the whole trial (its copies, every variant); ``ddp_spawn`` pickles the trainer
into fresh interpreters, which re-import the user's code from the trial's temporary copy without
the ``--stub-module`` stand-ins and without the probe's hooks. The fork start method
(Lightning's ``ddp_notebook``/``ddp_fork``, made for interactive sessions, where no script can
be re-run) starts every rank from this process as it stands: the patched module, the stubs, the
probe. So trial builds ``DDPStrategy(start_method="fork")``, with ``gloo`` on CPU and ``nccl``
on CUDA, and ``find_unused_parameters=False``, as a user's multi-GPU run has it by default.

Every rank runs :class:`RankCheck` and writes what it saw to ``rank<N>.json`` in a folder of
the cell's own; the process that called ``fit`` reads them back (the forked ranks' memory is
their own). A rank reports: that it finished; the parameters that got no gradient in a step
(DDP without ``find_unused_parameters`` then fails the next step, "Expected to have finished
reduction"); and, on rank 0, the parameters that differ between ranks after the last step
(gathered from every rank with the strategy's ``all_gather``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from hdrfix.trial.probe import Probe

#: How long a rank waits for the others in a collective before it gives up (gloo's own default is
#: 30 minutes: a rank that died would keep the cell hanging that long).
RANK_TIMEOUT_S = 120


@dataclass
class Ranks:
    """What a DDP cell's ranks reported, read back by the process that started them."""

    devices: int
    find_unused: bool = False  # DDP told to look for unused parameters: they are no failure
    finished: list[int] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)  # parameters without a gradient in a step
    differ: list[str] = field(default_factory=list)  # parameters not identical across ranks
    error: dict[str, str] | None = None  # how a rank failed, placed in the copy

    @property
    def ok(self) -> bool:
        unused_fail = bool(self.unused) and not self.find_unused
        return len(self.finished) == self.devices and not unused_fail and not self.differ

    def problems(self) -> list[str]:
        """What went wrong, in words, for the table (empty when ``ok``)."""
        out = []
        if len(self.finished) != self.devices:
            out.append(f"{len(self.finished)}/{self.devices} ranks finished")
        if self.unused and not self.find_unused:
            out.append(
                "parameter(s) unused in a step, which DDP (find_unused_parameters=False) "
                f"refuses: {_names(self.unused)}"
            )
        if self.differ:
            out.append(f"parameter(s) differ across ranks: {_names(self.differ)}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


#: How many parameter names a table line lists (report.json has them all).
NAMES_SHOWN = 6


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return shown if more <= 0 else f"{shown} and {more} more (report.json lists all)"


def strategy(package: Any, device: str, find_unused: bool = False) -> Any:
    """Lightning's DDP with fork-started ranks (see the module's docstring for why fork)."""
    return package.strategies.DDPStrategy(
        start_method="fork",
        process_group_backend="nccl" if device == "cuda" else "gloo",
        find_unused_parameters=find_unused,
        timeout=timedelta(seconds=RANK_TIMEOUT_S),
    )


def rank_check(package: Any, folder: Path, probe: Probe, outcome: Any) -> Any:
    """The callback every rank runs."""
    parent = os.getpid()

    class RankCheck(package.Callback):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.unused: set[str] = set()
            self.got_grad: set[str] = set()

        def setup(self, trainer: Any, module: Any, stage: str) -> None:
            if os.getpid() != parent:
                _into_log()

        def on_train_batch_start(self, *args: Any) -> None:
            self.got_grad.clear()

        def on_after_backward(self, trainer: Any, module: Any) -> None:
            self.got_grad.update(
                name for name, p in module.named_parameters() if p.grad is not None
            )

        def on_train_batch_end(self, trainer: Any, module: Any, *args: Any) -> None:
            self.unused.update(
                name
                for name, p in module.named_parameters()
                if p.requires_grad and name not in self.got_grad
            )
            # written now: a rank that fails later is stopped without any hook of Lightning's
            self._write(trainer, finished=False)

        def on_train_end(self, trainer: Any, module: Any) -> None:
            differ = []
            for name, p in module.named_parameters():
                every = trainer.strategy.all_gather(p.detach())
                if not all(torch.equal(every[0], other) for other in every[1:]):
                    differ.append(name)
            self._write(trainer, finished=True, differ=differ)

        def _write(self, trainer: Any, **facts: Any) -> None:
            report = {
                "unused": sorted(self.unused),
                "probe": asdict(probe),
                "steps": outcome.steps,
                "notes": outcome.notes,
                **facts,
            }
            path = folder / f"rank{trainer.global_rank}.json"
            path.write_text(json.dumps(report), encoding="utf-8")

    return RankCheck()


def _into_log() -> None:
    """In a forked rank, the file descriptors 1 and 2 follow ``sys.stdout`` where trial sends it
    (the framework's log): what gloo and C++ print goes there too, not over the table."""
    target = sys.stdout
    try:
        fd = target.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's captured stream): nothing to point the fds at
    if fd in (1, 2):
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)


@contextlib.contextmanager
def rank_folder() -> Iterator[Path]:
    """A folder for one cell's rank reports; the environment Lightning sets for its ranks
    (MASTER_PORT and the like) is taken back after, so the next cell finds a free port."""
    saved = dict(os.environ)
    for stream in (sys.stdout, sys.stderr):  # what is buffered must not be written once per rank
        with contextlib.suppress(Exception):
            stream.flush()
    with tempfile.TemporaryDirectory(prefix="hdrfix-ranks-") as folder:
        try:
            yield Path(folder)
        finally:
            os.environ.clear()
            os.environ.update(saved)


def read_ranks(folder: Path, devices: int, outcome: Any, find_unused: bool = False) -> Ranks:
    """Every rank's report merged; rank 0's probe, steps and notes become the cell's, with the
    worst exp, overflow and residual any rank saw, and every rank's losses judged finite."""
    ranks = Ranks(devices, find_unused)
    reports = {}
    for rank in range(devices):
        path = folder / f"rank{rank}.json"
        if path.is_file():
            reports[rank] = json.loads(path.read_text(encoding="utf-8"))
    unused: set[str] = set()
    for rank, report in sorted(reports.items()):
        if report.get("finished"):
            ranks.finished.append(rank)
        unused.update(report.get("unused", ()))
        _merge_probe(outcome.probe, report.get("probe", {}), first=rank == 0)
    ranks.unused = sorted(unused)
    zero = reports.get(0, {})
    ranks.differ = list(zero.get("differ", ()))
    outcome.steps = int(zero.get("steps", 0))
    outcome.notes.extend(n for n in zero.get("notes", ()) if n not in outcome.notes)
    return ranks


def _merge_probe(probe: Probe, seen: dict[str, Any], first: bool) -> None:
    if first:
        probe.losses = list(seen.get("losses", ()))
        probe.step_s = list(seen.get("step_s", ()))
    elif not all(_finite(v) for v in seen.get("losses", ())):
        probe.losses.append(float("nan"))  # a rank's non-finite loss is the cell's
    for name in ("max_exp", "overflow", "max_delta_log"):
        value, mine = seen.get(name), getattr(probe, name)
        if value is not None:
            setattr(probe, name, value if mine is None else max(mine, value))


def _finite(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and math.isfinite(value)


FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')
RAISED = re.compile(r"^(?P<type>[A-Za-z_][\w.]*): ?(?P<message>.*)$")


def failure(exc: BaseException, root: Path) -> dict[str, str]:
    """How a rank failed. The launcher raises in this process with the rank's traceback as text
    (torch's ProcessRaisedException): its last exception line is the failure, its last frame
    inside the patched copy at ``root`` the place, as a cell in one process reports them."""
    text = str(exc)
    lines = text.splitlines()
    frames = [(i, m) for i, line in enumerate(lines) if (m := FRAME.match(line))]
    if not frames:  # Lightning rewrote the message (its hint for unused parameters)
        return {"type": type(exc).__name__, "message": " ".join(text.split()), "at": "a rank"}
    after = lines[frames[-1][0] + 1 :]
    raised = next((RAISED.match(line) for line in after if RAISED.match(line)), None)
    kind = raised.group("type").rsplit(".", 1)[-1] if raised else type(exc).__name__
    start = after.index(raised.string) if raised else 0
    message = " ".join([raised.group("message"), *after[start + 1 :]] if raised else after)
    return {"type": kind, "message": " ".join(message.split()), "at": _inside(frames, root)}


def _inside(frames: list[tuple[int, re.Match[str]]], root: Path) -> str:
    top = root.resolve()
    for _, frame in reversed(frames):
        path = Path(frame.group("file")).resolve()
        if path.is_relative_to(top):
            return f"{path.relative_to(top).as_posix()}:{frame.group('line')}"
    return "outside the repository"
