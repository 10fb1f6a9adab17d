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
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hdrfix.lang.errors import HdrfixError
from hdrfix.patchedcopy import copy_sources
from hdrfix.validate.fixture import FIXTURE_NETWORK, FIXTURE_PACKAGES
from hdrfix.validate.importing import isolated_imports
from hdrfix.validate.metrics import (
    DEFINITIONS,
    HALF_MAX,
    MEMORY_METHODS,
    MU,
    WHITE_POINT,
    Memory,
)
from hdrfix.validate.network import (
    UserNetwork,
    find_network,
    network_kwargs,
    user_tops,
)
from hdrfix.validate.parallel import jobs_for, logged_here, train_all
from hdrfix.validate.threads import choose_workers, torch_settings
from hdrfix.validate.training import (
    EVAL_SEED_OFFSET,
    Batches,
    Built,
    build,
    initial_state,
    interleaved_step_ms,
    train_step,
)
from hdrfix.validate.variants import Prepared, Variant, prepare

if TYPE_CHECKING:
    from hdrfix.core.plugin import Phase


TIMING_ROUNDS = 20  # interleaved training steps per variant for the step time

# The default run's size: all default variants (base and each phase) train in well under a
# minute on 2 CPU cores and still show docs/design.md §4's effects (base overflows, phase1 cuts
# it but hurts the holes, bound removes it at no cost).
DEFAULT_STEPS = 300
DEFAULT_BATCH = 4
DEFAULT_SIZE = (48, 48)
DEFAULT_EVAL_BATCHES = 32
DEFAULT_SEED = 0


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise HdrfixError(f"--size takes HxW, e.g. 64x64; got {text!r}")
    h, w = int(match.group(1)), int(match.group(2))
    if h < 8 or w < 8 or h * w > 4096 * 4096:
        raise HdrfixError(f"--size {h}x{w}: frames must be at least 8x8 and at most 4096x4096")
    return h, w


@dataclass
class Settings:
    variants: list[Variant]
    steps: int = DEFAULT_STEPS
    batch: int = DEFAULT_BATCH
    height: int = DEFAULT_SIZE[0]
    width: int = DEFAULT_SIZE[1]
    device: str = "cpu"
    seed: int = DEFAULT_SEED
    eval_batches: int = DEFAULT_EVAL_BATCHES
    network_from: Path | None = None
    network: str | None = None  # with network_from: the file defining PatchNetwork
    # variants trained at once, each in its own process (default: the cores free now); the
    # figures do not depend on it (hdrfix.validate.threads)
    threads: int | None = None
    torch_threads: int = 1  # per variant; more only for benchmarks/bench_validate.py
    notes: list[str] = field(default_factory=list)

    def check(self) -> None:
        if not self.variants:
            raise HdrfixError("no variant to run")
        if self.steps < 1:
            raise HdrfixError(f"--steps must be at least 1, got {self.steps}")
        if self.batch < 1:
            raise HdrfixError(f"--batch must be at least 1, got {self.batch}")
        if self.eval_batches < 1:
            raise HdrfixError(f"--eval-batches must be at least 1, got {self.eval_batches}")
        if self.threads is not None and self.threads < 1:
            raise HdrfixError(f"--threads must be at least 1, got {self.threads}")
        if self.torch_threads < 1:
            raise HdrfixError(f"torch threads must be at least 1, got {self.torch_threads}")
        if self.device not in ("cpu", "cuda"):
            raise HdrfixError(f"--device must be cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            why = (
                "this torch is built without CUDA"
                if torch.version.cuda is None
                else "torch sees no GPU"
            )
            raise HdrfixError(
                f"--device cuda: {why} (torch {torch.__version__})", hint="use --device cpu"
            )
        if self.network and self.network_from is None:
            raise HdrfixError("--network needs --network-from REPO")
        if self.network_from is not None and not Path(self.network_from).is_dir():
            raise HdrfixError(
                "--network-from: no such folder",
                str(self.network_from),
                hint="pass the root of the repository holding PatchNetwork",
            )

    def as_json(self) -> dict[str, Any]:
        return {
            "variants": [
                {"name": v.name, "phases": list(v.phases), "clamp_bound": v.residual_bound}
                for v in self.variants
            ],
            "steps": self.steps,
            "batch": self.batch,
            "height": self.height,
            "width": self.width,
            "device": self.device,
            "seed": self.seed,
            "eval_batches": self.eval_batches,
            "eval_seed": self.seed + EVAL_SEED_OFFSET,
            "network_from": str(self.network_from) if self.network_from else None,
            "threads": self.torch_threads,
            "half_max": HALF_MAX,
            # the bound of the variants that clamp (per variant: variants[].clamp_bound)
            "clamp_bound": max(
                (v.residual_bound for v in self.variants if v.residual_bound is not None),
                default=None,
            ),
            "mulaw_mu": MU,
            "white_point": WHITE_POINT,
        }


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
            with logged_here(scratch_log), session(timing, registry) as ses:
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
