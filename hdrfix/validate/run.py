"""``hdrfix validate``: train the untouched and the patched framework side by side.

For each *variant* (``base``, ``phase1``, ``phase1+phase2``, ``bound``, ...):

1. copy the fixture framework (and, with ``network_from``, the user's repository) to a
   temporary folder and apply the variant's phases with the engine ``hdrfix apply`` uses
   (:func:`hdrfix.validate.variants.prepare`);
2. import the patched trainer (``PatchFrameInterpolationTrainer``) and network from that copy;
   the network file is loaded directly, past its package ``__init__`` (which needs OpenCV in
   the field, see :mod:`hdrfix.validate.importing`);
3. load the one initial network state of this run, train ``steps`` steps on synthetic HDR
   batches in the field's format (:func:`hdrfix.validate.synth.field_batch` of
   :class:`hdrfix.validate.synth.SyntheticHDR`: ``patch_input`` [N, 7, H, W], the same batches
   for every variant) with the trainer's own ``training_step`` and ``configure_optimizers``, in its
   ``log`` mode (the config's ``normalization.type``) (:mod:`hdrfix.validate.training`);
4. evaluate with the trainer's ``validation_step`` on held-out batches from another seed stream.

Every metric is computed from the raw tensors the trainer leaves in ``last_log_branch``
(:mod:`hdrfix.validate.metrics`, whose ``DEFINITIONS`` go into ``report.json``):

* overflow: elements of the raw prediction above 65504 (half-float max) or not finite;
* frame error: mean |mu(stored) - mu(target)| with mu(x) = log1p(300 x / 1000) / log1p(300),
  where ``stored`` is the prediction as a half-float frame holds it (NaN -> 0, clipped to
  [0, 65504]); hole error: the same mean over hole pixels only;
* max |delta_log|; the share of residual elements at the phase1 clamp bound (within 1e-6 of
  8.0, reported when phase1 is in the variant); the learned ``residual_output_scale`` (phase2);
* step time (median ms of a training step, measured with the variants taking turns so that a
  busy machine slows all alike); peak memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU:
  peak RSS growth of the process while the variant trained, see ``MEMORY_METHODS``).

This module holds the run's settings and puts the steps together. The result is a plain
JSON-ready dict; :mod:`hdrfix.validate.report` renders it.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hdrfix.patchedcopy import copy_sources
from hdrfix.validate.fixture import FIXTURE_NETWORK, FIXTURE_PACKAGES
from hdrfix.validate.gcfreeze import collector_spared
from hdrfix.validate.importing import isolated_imports
from hdrfix.validate.metrics import (
    DEFINITIONS,
    MEMORY_METHODS,
    Memory,
)
from hdrfix.validate.network import (
    UserNetwork,
    find_network,
    network_kwargs,
    user_tops,
)
from hdrfix.validate.parallel import jobs_for, logged_here, train_all
from hdrfix.validate.settings import (  # noqa: F401 (re-exported: the run's settings)
    DEFAULT_BATCH,
    DEFAULT_EVAL_BATCHES,
    DEFAULT_SEED,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    Settings,
    parse_size,
)
from hdrfix.validate.threads import choose_workers, torch_settings
from hdrfix.validate.training import (
    Batches,
    Built,
    build,
    initial_state,
    interleaved_step_ms,
    train_step,
)
from hdrfix.validate.variants import Prepared, prepare

if TYPE_CHECKING:
    from hdrfix.core.plugin import Phase


TIMING_ROUNDS = 20  # interleaved training steps per variant for the step time


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


@dataclass
class Session:
    settings: Settings
    batches: Batches
    built: list[Built]
    user: UserNetwork | None
    prepared: list[Prepared]
    tops: tuple[str, ...]


@contextlib.contextmanager
def session(settings: Settings, registry: Mapping[str, type[Phase]]) -> Iterator[Session]:
    """Every variant patched, imported and built from the same initial weights.

    Inside, torch runs with the run's threads and determinism and the patched copies are
    importable; afterwards the temporary copies are gone and the process is as it was.
    """
    settings.check()
    user_root = Path(settings.network_from).resolve() if settings.network_from else None
    with tempfile.TemporaryDirectory(prefix="hdrfix-validate-") as tmp_name:
        tmp = Path(tmp_name)
        user: UserNetwork | None = None
        if user_root is not None:
            rel = find_network(user_root, settings.network)
            pristine = copy_sources(user_root, tmp / "user-pristine")
            user = UserNetwork(pristine, rel, network_kwargs(pristine), user_tops(pristine, rel))
        prepared = [
            prepare(v, tmp / f"{i}", registry, user) for i, v in enumerate(settings.variants)
        ]
        tops = tuple(user.tops if user else FIXTURE_PACKAGES)
        with isolated_imports(tops), torch_settings(settings.device, settings.torch_threads):
            batches = Batches(settings)
            init_state = initial_state(settings, user, tops, batches)
            built = [build(settings, prep, user, tops, init_state, batches) for prep in prepared]
            batches.generate()
            yield Session(settings, batches, built, user, prepared, tops)


def run(
    settings: Settings,
    registry: Mapping[str, type[Phase]],
    *,
    on_step: Callable[[str, int], None] | None = None,
    on_timing: Callable[[int], None] | None = None,
    log: Path | None = None,
) -> dict[str, Any]:
    """Prepare, train and evaluate every variant; the report as a JSON-ready dict.

    Every variant is patched and built here first, so that bad input fails before any
    training; then the variants train, as many at once as :func:`choose_workers` says
    (:mod:`hdrfix.validate.parallel`); last, their step time is measured here with the
    variants taking turns. ``on_step(variant_name, step)`` is called after every training
    step, ``on_timing(round)`` after every round of the timing. What the framework prints
    goes to ``log`` (written once training has begun), not to this process's streams.
    """
    started = time.perf_counter()
    workers = choose_workers(settings.threads, len(settings.variants), settings.device)
    rounds = timing_rounds(settings.steps) - 1
    # the timing needs a model of each variant and a few batches, not the held-out set
    timing = replace(settings, steps=min(settings.steps, rounds + 1), eval_batches=1)
    with tempfile.TemporaryDirectory(prefix="hdrfix-validate-log-") as scratch:
        scratch_log = Path(scratch) / "validate.log"
        scratch_log.touch()
        began = False  # the log goes to the report folder once the input proved good
        try:
            with (
                collector_spared() as spare_more,
                logged_here(scratch_log),
                session(timing, registry) as ses,
            ):
                spare_more()  # what building the variants imported (the compiler, with Adam)
                jobs = jobs_for(settings, ses.prepared, ses.user, ses.tops)
                began = True
                variants = train_all(jobs, workers, on_step, scratch_log)
                _warm_up(ses)
                timed = interleaved_step_ms(
                    [(b.model, b.optimiser) for b in ses.built],
                    ses.batches,
                    rounds,
                    settings.device,
                    on_round=on_timing,
                )
                for result, ms in zip(variants, timed, strict=False):
                    result["metrics"]["step_ms"] = ms
                report = _report(settings, ses, variants, Memory(settings.device), workers)
        finally:
            if log is not None and began:
                log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(scratch_log, log)
    report["wall_s"] = time.perf_counter() - started
    return report


def timing_rounds(steps: int) -> int:
    """How many rounds the step timing takes (one untimed round first): ``on_timing`` calls."""
    return min(TIMING_ROUNDS, max(3, steps)) + 1


def _warm_up(ses: Session) -> None:
    """One training step of a throwaway copy of the first variant, so that the one-time costs
    of the process (allocator growth, kernel caches, thread pools) land on no variant."""
    import copy

    model = copy.deepcopy(ses.built[0].model)
    train_step(model, model.configure_optimizers(), ses.batches.step(0), 0)
    del model
    gc.collect()


def _report(
    settings: Settings,
    ses: Session,
    variants: list[dict[str, Any]],
    memory: Memory,
    workers: int,
) -> dict[str, Any]:
    import numpy

    from hdrfix import __version__

    user = ses.user
    return {
        "hdrfix": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "device": {
            "type": settings.device,
            "name": device_name(settings.device),
            "threads": settings.torch_threads,
            "workers": workers,
            "cuda": torch.version.cuda if settings.device == "cuda" else None,
        },
        "settings": settings.as_json(),
        "network": (
            {"from": str(settings.network_from), "file": user.rel, "kwargs": user.kwargs}
            if user
            else {"from": "fixtures/framework", "file": FIXTURE_NETWORK, "kwargs": {}}
        ),
        "definitions": DEFINITIONS,
        "memory_method": memory.method,
        "memory_definition": MEMORY_METHODS[memory.method],
        "notes": list(settings.notes) + [n for b in ses.built for n in b.notes],
        "variants": variants,
    }
