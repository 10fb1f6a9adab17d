"""Training validate's variants side by side, each with one torch thread.

Every variant is a job: its patched copy (prepared beforehand, in the parent), imported,
built from the run's one initial state, trained and evaluated by :func:`train_job`. With one
worker the jobs run here, one after the other; with more, each runs in a worker process of a
``spawn`` pool (a forked child would inherit torch's thread pools and locks). Either way a
job's figures are the same: they depend on the seed and the variant alone
(:mod:`hdrfix.validate.threads` says why one thread).

What the framework prints (a user's network may print pages) and the warnings go to the
run's log file, never to the terminal, which shows progress and the table.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import multiprocessing
import os
import queue as queues
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdrfix.validate.gcfreeze import collector_spared
from hdrfix.validate.importing import isolated_imports
from hdrfix.validate.threads import torch_settings

if TYPE_CHECKING:
    from hdrfix.validate.network import UserNetwork
    from hdrfix.validate.settings import Settings
    from hdrfix.validate.training import Batches
    from hdrfix.validate.variants import Prepared

OnStep = Callable[[str, int], None]


@dataclass(frozen=True)
class Job:
    """One variant to train: everything a worker process needs, picklable."""

    settings: Settings
    prepared: Prepared
    user: UserNetwork | None
    tops: tuple[str, ...]


def jobs_for(
    settings: Settings,
    prepared: Sequence[Prepared],
    user: UserNetwork | None,
    tops: Sequence[str],
) -> list[Job]:
    # each job its own notes list: the parent's notes come from its own build, once
    own = replace(settings, notes=[])
    return [Job(own, prep, user, tuple(tops)) for prep in prepared]


# The run's batches, made once per process and shared by the variants it trains.
_batches: tuple[tuple[Any, ...], Batches] | None = None


def _shared_batches(settings: Settings) -> Batches:
    global _batches
    from hdrfix.validate.training import Batches

    s = settings
    key = (s.height, s.width, s.seed, s.batch, s.steps, s.eval_batches, s.device)
    if _batches is None or _batches[0] != key:
        _batches = None
        _batches = (key, Batches(settings))
    return _batches[1]


def _forget_batches() -> None:
    global _batches
    _batches = None


def train_job(job: Job, on_step: OnStep | None) -> dict[str, Any]:
    """Train and evaluate one variant; its part of the report (:func:`train_variant`)."""
    from hdrfix.validate.metrics import Memory
    from hdrfix.validate.training import build, initial_state, train_step, train_variant

    s = job.settings
    with (
        collector_spared() as spare_more,
        isolated_imports(job.tops),
        torch_settings(s.device, s.torch_threads),
    ):
        batches = _shared_batches(s)
        init = initial_state(s, job.user, job.tops, batches)
        built = build(s, job.prepared, job.user, job.tops, init, batches)
        batches.generate()
        spare_more()  # what building the variant imported (the compiler, with Adam)
        # one step of a throwaway copy: the process's one-time costs (allocator growth,
        # kernel caches) land on no variant's step time or memory
        spare = copy.deepcopy(built.model)
        train_step(spare, spare.configure_optimizers(), batches.step(0), 0)
        del spare
        gc.collect()
        return train_variant(s, batches, built, Memory(s.device), on_step)


def train_all(
    jobs: Sequence[Job], workers: int, on_step: OnStep | None, log: Path
) -> list[dict[str, Any]]:
    """Every job's result, in the jobs' order; ``workers`` of them at a time.

    Worker processes write what they print to ``log``; a job run here prints to this
    process's streams, which the caller points at the same log (:func:`logged_here`).
    """
    if workers <= 1 or len(jobs) <= 1:
        try:
            return [train_job(job, on_step) for job in jobs]
        finally:
            _forget_batches()
    context = multiprocessing.get_context("spawn")
    steps = context.Queue()
    with context.Pool(
        min(workers, len(jobs)), initializer=_start_worker, initargs=(steps, str(log))
    ) as pool:
        pending = pool.map_async(_run_in_worker, jobs, chunksize=1)
        while not pending.ready():
            _relay(steps, on_step, wait=0.1)
        results = pending.get()
        _relay(steps, on_step, wait=0.0)
    return results


def _relay(steps: Any, on_step: OnStep | None, wait: float) -> None:
    """Hand the workers' step reports to ``on_step``; wait up to ``wait`` s for the first."""
    try:
        report = steps.get(timeout=wait) if wait else steps.get_nowait()
        while True:
            if on_step is not None:
                on_step(*report)
            report = steps.get_nowait()
    except queues.Empty:
        pass


_steps_queue: Any = None


def _start_worker(steps: Any, log: str) -> None:
    """A worker's output, down to its file descriptors (C code prints there), goes to the log."""
    global _steps_queue
    _steps_queue = steps
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # the worker's streams for as long as it lives: the pool ends the process, not a block
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115


def _run_in_worker(job: Job) -> dict[str, Any]:
    try:
        return train_job(job, _put_step)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _put_step(name: str, step: int) -> None:
    _steps_queue.put((name, step))


@contextlib.contextmanager
def logged_here(log: Path) -> Iterator[None]:
    """This process's prints and warnings go to ``log`` while the block runs.

    Only Python's streams: the terminal's file descriptors stay, for the progress line that
    the caller writes to the stream it held before.
    """
    with (
        open(log, "a", encoding="utf-8", errors="replace") as handle,
        contextlib.redirect_stdout(handle),
        contextlib.redirect_stderr(handle),
    ):
        yield
