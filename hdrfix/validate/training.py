"""Building each variant's patched trainer from the run's one initial state, and training it.

The trainer's own ``training_step``, ``validation_step`` and ``configure_optimizers`` do the
work; this module only feeds them the run's batches and collects what :mod:`metrics` counts.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from hdrfix.lang.errors import HdrfixError
from hdrfix.validate.fixture import FRAMEWORK_CONFIG, build_trainer, framework_dir
from hdrfix.validate.importing import import_trainer, no_bytecode
from hdrfix.validate.metrics import HIST_BINS, HIST_RANGE, Memory, Sums
from hdrfix.validate.network import (
    SCALE_FACTOR,
    UserNetwork,
    build_user_network,
    check_forward,
    user_network_class,
    with_scale_factor,
)
from hdrfix.validate.synth import SyntheticHDR, field_batch
from hdrfix.validate.variants import Prepared, Variant, reports_clamp


class Settings(Protocol):
    """What training reads of a run's settings (:class:`hdrfix.validate.run.Settings`): a
    protocol, so that the run, which drives training, is not imported back from here."""

    steps: int
    batch: int
    height: int
    width: int
    device: str
    seed: int
    eval_batches: int
    notes: list[str]


EVAL_SEED_OFFSET = 1_000_003  # held-out frames: a different seed stream
CACHE_LIMIT_BYTES = 256 * 2**20  # keep the training batches in memory below this (CPU)
CACHE_LIMIT_HOST_BYTES = 16 * 2**30  # ... and in host memory when training on a GPU


class Batches:
    """The run's training and held-out batches, the same for every variant.

    Synthetic frames cost CPU time (about 0.1 s per batch of 4 at 270x480), so the training
    batches are made once, before any variant trains, and kept: on the device when training on
    the CPU (up to :data:`CACHE_LIMIT_BYTES`), in host memory when training on a GPU (up to
    :data:`CACHE_LIMIT_HOST_BYTES`, each batch copied over before its step's timing starts).
    Beyond that they are made again at every step.
    """

    #: Channels of a field batch (patch_input 7, patch_target_rgb 3, patch_target_residual 3).
    CHANNELS = 13

    def __init__(self, settings: Settings) -> None:
        s = settings
        self.device = s.device
        self.steps = s.steps
        self.train = SyntheticHDR(s.height, s.width, s.seed, batch_size=s.batch)
        self.held_out = SyntheticHDR(
            s.height, s.width, s.seed + EVAL_SEED_OFFSET, batch_size=s.batch
        )
        limit = CACHE_LIMIT_BYTES if s.device == "cpu" else CACHE_LIMIT_HOST_BYTES
        self._fits = s.batch * self.CHANNELS * s.height * s.width * 4 * s.steps <= limit
        self._cache: dict[int, dict[str, torch.Tensor]] | None = None
        self.eval = [self._slim(self.held_out.batch(i), self.device) for i in range(s.eval_batches)]

    def generate(self) -> None:
        """Make the training batches now (outside the timed, measured training) if they fit."""
        if self._fits and self._cache is None:
            self._cache = {i: self._slim(self.train.batch(i), "cpu") for i in range(self.steps)}

    def _slim(self, batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
        """The trainer's batch format (:func:`hdrfix.validate.synth.field_batch`) on ``device``."""
        if "patch_input" not in batch:
            batch = field_batch(batch)
        return {k: v.to(device) for k, v in batch.items()}

    def step(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.train.batch(i) if self._cache is None else self._cache[i]
        return self._slim(batch, self.device)


@dataclass
class Built:
    """One variant, ready to train: its patched trainer with the run's initial weights."""

    variant: Variant
    model: Any
    optimiser: Any
    changed: list[str]
    scale_init: float | None
    notes: list[str] = field(default_factory=list)


def load_classes(
    prep: Prepared, user: UserNetwork | None, tops: Sequence[str]
) -> tuple[Any, type | None]:
    trainer = import_trainer(prep.framework, tops)
    if user is None or prep.network_root is None:
        return trainer, None
    return trainer, user_network_class(prep.network_root, user, tops, prep.variant.name)


def build(
    settings: Settings,
    prep: Prepared,
    user: UserNetwork | None,
    tops: Sequence[str],
    init_state: Mapping[str, torch.Tensor],
    batches: Batches,
) -> Built:
    name = prep.variant.name
    trainer, net_cls = load_classes(prep, user, tops)
    config = trainer.load_config(prep.framework / FRAMEWORK_CONFIG)
    torch.manual_seed(settings.seed)
    model = build_trainer(trainer, config)
    if net_cls is not None and user is not None:
        model.patch_network = with_scale_factor(build_user_network(net_cls, user, name))
    net = model.patch_network
    scale_init = _scale_value(net, prep.variant)
    missing, unexpected = net.load_state_dict(dict(init_state), strict=False)
    added = prep.variant.network_parameters
    extra = [k for k in missing if k.split(".")[-1] not in added]
    if unexpected or extra:
        raise HdrfixError(
            f"variant {name}: the patched network's parameters differ from the base network's "
            f"beyond {', '.join(added) or 'none'} (missing: {', '.join(extra) or '-'}; "
            f"unexpected: {', '.join(unexpected) or '-'})",
            hint="validate compares variants from the same initial weights",
        )
    model.to(settings.device)
    if user is not None:
        check_forward(net, batches.eval[0], f"--network-from ({name})", user.kwargs)
    return Built(
        prep.variant, model, model.configure_optimizers(), prep.changed, scale_init, prep.notes
    )


def initial_state(
    settings: Settings, user: UserNetwork | None, tops: Sequence[str], batches: Batches
) -> dict[str, torch.Tensor]:
    """The one initial network of the run, built from ``seed`` with the unpatched class."""
    if user is None:
        with no_bytecode():
            trainer = import_trainer(framework_dir(), tops)
            config = trainer.load_config(framework_dir() / FRAMEWORK_CONFIG)
        torch.manual_seed(settings.seed)
        net = build_trainer(trainer, config).patch_network
    else:
        cls = user_network_class(user.root, user, tops, "base")
        torch.manual_seed(settings.seed)
        net = build_user_network(cls, user, "base")
        check_forward(
            net,
            batches.eval[0]
            if settings.device == "cpu"
            else {k: v.cpu() for k, v in batches.eval[0].items()},
            "--network-from",
            user.kwargs,
        )
        if not hasattr(net, SCALE_FACTOR):
            settings.notes.append(
                f"--network-from: PatchNetwork has no {SCALE_FACTOR}; the fixture trainer "
                "multiplies its residual by 1.0 instead"
            )
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _scale_value(net: torch.nn.Module, variant: Variant) -> float | None:
    """The first parameter the variant's phases add to the network (phase2's learnable
    scale), as a number; None when it adds none."""
    for name in variant.network_parameters:
        value = getattr(net, name, None)
        if isinstance(value, torch.Tensor):
            return float(value.detach().float().mean())
    return None


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def train_step(
    model: Any, optimiser: Any, batch: Mapping[str, torch.Tensor], step: int
) -> dict[str, Any]:
    """One step of the trainer's own training loop: forward, backward, optimiser step."""
    out = model.training_step(batch, step)
    optimiser.zero_grad()
    out["loss"].backward()
    optimiser.step()
    return out


def interleaved_step_ms(
    trained: Sequence[tuple[Any, Any]],
    batches: Any,
    rounds: int,
    device: str,
    on_round: Callable[[int], None] | None = None,
) -> list[float]:
    """Median ms of a training step per model, the models taking turns step by step.

    Taking turns (in a rotating order, after one untimed warm-up round) means a slow spell of
    the machine hits every variant alike, so the medians compare fairly even on a busy CPU.
    ``on_round(r)`` is called after each of the ``rounds + 1`` rounds.
    """
    times: list[list[float]] = [[] for _ in trained]
    n = len(trained)
    for r in range(rounds + 1):
        batch = batches.step(r % batches.steps)
        for k in range(n):
            i = (k + r) % n
            model, optimiser = trained[i]
            _sync(device)
            t0 = time.perf_counter()
            train_step(model, optimiser, batch, r)
            _sync(device)
            if r:
                times[i].append(time.perf_counter() - t0)
        if on_round:
            on_round(r)
    return [statistics.median(t) * 1e3 for t in times]


def train_variant(
    settings: Settings,
    batches: Batches,
    built: Built,
    memory: Memory,
    on_step: Callable[[str, int], None] | None,
) -> dict[str, Any]:
    """Train one variant, evaluate it on the held-out batches; its part of the report."""
    name, model, optimiser = built.variant.name, built.model, built.optimiser
    clamps = reports_clamp(built.variant)

    memory.begin()
    torch.manual_seed(settings.seed)
    train = Sums(built.variant.residual_bound)
    losses: list[float] = []
    overflow_curve: list[int] = []
    max_delta_curve: list[float] = []
    times: list[float] = []
    model.train()
    for step in range(settings.steps):
        batch = batches.step(step)
        _sync(settings.device)
        t0 = time.perf_counter()
        out = train_step(model, optimiser, batch, step)
        _sync(settings.device)
        times.append(time.perf_counter() - t0)
        branch = model.last_log_branch
        overflow_curve.append(train.add_branch(branch["prediction"], branch["delta_log"]))
        max_delta_curve.append(float(branch["delta_log"].abs().max()))
        losses.append(float(out["loss"].detach()))
        if on_step:
            on_step(name, step)
    peak = memory.peak_mib()

    held = Sums(built.variant.residual_bound)
    model.eval()
    with torch.no_grad():
        for i, batch in enumerate(batches.eval):
            model.validation_step(batch, i)
            branch = model.last_log_branch
            held.add_branch(branch["prediction"], branch["delta_log"])
            held.add_errors(
                branch["prediction"], batch["patch_target_rgb"], batch["patch_input"][:, 3:4]
            )
            held.add_hist(branch["delta_log"])
    model.train()

    tail = losses[-max(1, len(losses) // 10) :]
    metrics = {
        "train_overflow_px": train.overflow_px,
        "train_steps_with_overflow": train.with_overflow,
        "eval_overflow_px": held.overflow_px,
        "eval_batches_with_overflow": held.with_overflow,
        "eval_frame_error": held.err_sum / max(1, held.err_count),
        "eval_hole_error": held.hole_sum / max(1.0, held.hole_count),
        "train_max_abs_delta_log": train.max_abs_delta,
        "eval_max_abs_delta_log": held.max_abs_delta,
        "train_clamped_share": train.clamped / max(1, train.delta_count) if clamps else None,
        "eval_clamped_share": held.clamped / max(1, held.delta_count) if clamps else None,
        "learned_scale": _scale_value(model.patch_network, built.variant),
        "learned_scale_init": built.scale_init,
        "final_train_loss": statistics.fmean(tail),
        "step_ms": None,  # set from the interleaved timing, see interleaved_step_ms
        "train_step_ms": statistics.median(times) * 1e3,
        "peak_memory_mib": peak,
    }
    return {
        "name": name,
        "phases": list(built.variant.phases),
        "changed_files": built.changed,
        "parameters": sum(p.numel() for p in model.patch_network.parameters()),
        "metrics": metrics,
        "curves": {
            "loss": losses,
            "overflow_px": overflow_curve,
            "max_abs_delta_log": max_delta_curve,
        },
        "delta_log_hist": {
            "range": list(HIST_RANGE),
            "bins": HIST_BINS,
            "counts": [int(c) for c in held.hist.tolist()],
        },
    }
