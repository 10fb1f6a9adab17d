"""A few real steps of the user's trainer: under Lightning when it is a LightningModule, else a
plain loop (training_step, backward, the module's own optimiser, one validation_step)."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hdrfix.trial import ddp
from hdrfix.trial.ddp import Ranks
from hdrfix.trial.logmode import residual_watch
from hdrfix.trial.probe import Probe, Timer, recording

Batch = dict[str, Any]
Batches = Sequence[Batch]


@dataclass
class Outcome:
    runner: str  # "lightning" or "plain"
    probe: Probe
    steps: int = 0
    error: dict[str, str] | None = None
    notes: list[str] = field(default_factory=list)
    ranks: Ranks | None = None  # under DDP: what every rank reported

    @property
    def trains(self) -> bool:
        ranks_ok = self.ranks is None or self.ranks.ok
        return self.error is None and self.probe.finite and ranks_ok


def lightning_module_class() -> type | None:
    """LightningModule, if the user's code imported Lightning (trial never imports it first:
    a plain trainer needs no Lightning)."""
    for name in ("pytorch_lightning", "lightning.pytorch"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "LightningModule"):
            return module.LightningModule
    return None


def first_optimiser(model: Any, notes: list[str]) -> torch.optim.Optimizer:
    """The first optimiser ``configure_optimizers`` returns, in any of Lightning's shapes."""
    try:
        found: Any = model.configure_optimizers()
        while not isinstance(found, torch.optim.Optimizer):
            if isinstance(found, dict):
                found = found["optimizer"]
            elif isinstance(found, (list, tuple)) and found:
                found = found[0]
            else:
                raise TypeError(f"configure_optimizers returned {type(found).__name__}")
        return found
    except Exception as exc:  # the user's code: say so, and train anyway
        notes.append(
            f"configure_optimizers is unusable ({type(exc).__name__}: {exc}): AdamW(lr=1e-3) used"
        )
        return torch.optim.AdamW(model.parameters(), lr=1e-3)


def where_in(exc: BaseException, root: Path) -> str:
    """``file:line`` of the traceback's last frame inside the patched copy at ``root``."""
    inside = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if Path(frame.filename).resolve().is_relative_to(root.resolve())
    ]
    if not inside:
        return "outside the repository"
    last = inside[-1]
    return f"{Path(last.filename).resolve().relative_to(root.resolve()).as_posix()}:{last.lineno}"


def _to(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def plain_loop(
    model: Any, batches: Batches, val_batch: Batch, device: str, outcome: Outcome
) -> None:
    probe, timer = outcome.probe, Timer(outcome.probe)
    model.to(device)
    optimiser = first_optimiser(model, outcome.notes)
    with recording(probe):
        model.train()
        for index, batch in enumerate(batches):
            timer.begin()
            out = model.training_step(_to(batch, device), index)
            loss = probe.saw_loss(out)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            timer.end()
            probe.saw_step(model)
            outcome.steps += 1
        if hasattr(model, "validation_step"):
            model.eval()
            with torch.no_grad():
                model.validation_step(_to(val_batch, device), 0)
            probe.saw_step(model)


def lightning_optimisers(model: Any, package: str, notes: list[str]) -> None:
    """What ``configure_optimizers`` returns, parsed as Lightning will parse it; a shape this
    Lightning rejects (a list of scheduler configs, from an older Lightning) trains with the
    first optimiser and no scheduler, noted: the cell is about the phases, not the schedule."""
    import importlib

    reason: Exception
    try:
        parsing = importlib.import_module(f"{package}.core.optimizer")
        conf = model.configure_optimizers()
        optimisers, schedulers, monitor = parsing._configure_optimizers(conf)
        configs = (
            parsing._configure_schedulers_automatic_opt(schedulers, monitor)
            if model.automatic_optimization
            else parsing._configure_schedulers_manual_opt(schedulers)
        )
        parsing._validate_optimizers_attached(optimisers, configs)
        return
    except (ImportError, AttributeError) as exc:
        if isinstance(exc, ImportError) or "has no attribute '_configure" in str(exc):
            return  # another Lightning: it judges for itself
        reason = exc
    except Exception as exc:  # the user's configure_optimizers, as Lightning reads it
        reason = exc
    first = first_optimiser(model, notes)
    notes.append(
        f"Lightning rejects what configure_optimizers returns ({type(reason).__name__}: "
        f"{reason}): trained with its first optimiser, no scheduler"
    )
    model.configure_optimizers = lambda: first


def lightning_run(
    model: Any,
    batches: Batches,
    val_batch: Batch,
    device: str,
    outcome: Outcome,
    parallel: Parallel | None = None,
) -> None:
    """A real ``Trainer.fit``: one epoch of ``batches``, one validation batch, no logger,
    checkpoint, progress bar or sanity check (Lightning's fast_dev_run, with a step count).
    Under manual optimisation a step that returns no loss is judged by what it backpropagated.
    With ``parallel``, Lightning's DDP starts the ranks and shares ``batches`` out among them
    (its distributed sampler); :mod:`hdrfix.trial.ddp` checks what DDP needs of each."""
    import logging

    pl = sys.modules.get("pytorch_lightning") or sys.modules["lightning.pytorch"]
    probe, timer = outcome.probe, Timer(outcome.probe)
    lightning_optimisers(model, pl.__name__, outcome.notes)

    class Watch(pl.Callback):  # type: ignore[misc, name-defined]
        def on_train_batch_start(self, *args: Any) -> None:
            timer.begin()

        def on_train_batch_end(self, trainer: Any, module: Any, out: Any, *args: Any) -> None:
            timer.end()
            probe.saw_loss(out if _holds_loss(out) or not backpropagated else backpropagated[-1])
            backpropagated.clear()
            probe.saw_step(module)
            outcome.steps += 1

        def on_validation_batch_end(self, trainer: Any, module: Any, *args: Any) -> None:
            probe.saw_step(module)

    backpropagated: list[Any] = []
    if not getattr(model, "automatic_optimization", True):
        manual_backward = model.manual_backward

        def recording_backward(loss: Any, *args: Any, **kwargs: Any) -> Any:
            backpropagated.append(loss)
            return manual_backward(loss, *args, **kwargs)

        model.manual_backward = recording_backward
    # GPU/TPU banners, and torch's "terminating process" as a failed rank's peers are stopped
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning",
                 "lightning_fabric", "torch.multiprocessing.spawn"):  # fmt: skip
        logging.getLogger(name).setLevel(logging.ERROR)
    if parallel is not None:
        with ddp.rank_folder() as folder:
            checks = ddp.rank_check(pl, folder, probe, outcome)
            try:
                _fit(pl, model, batches, val_batch, device, probe, [Watch(), checks], parallel)
            except Exception as exc:
                outcome.ranks = ddp.read_ranks(
                    folder, parallel.devices, outcome, parallel.find_unused
                )
                outcome.error = outcome.ranks.error = ddp.failure(exc, parallel.root)
                return
            outcome.ranks = ddp.read_ranks(folder, parallel.devices, outcome, parallel.find_unused)
        return
    _fit(pl, model, batches, val_batch, device, probe, [Watch()], None)


@dataclass(frozen=True)
class Parallel:
    """A cell under DDP: how many ranks, and the patched copy their failures are placed in."""

    devices: int
    root: Path
    find_unused: bool = False


def _fit(
    pl: Any,
    model: Any,
    batches: Sequence[dict[str, Any]],
    val_batch: dict[str, Any],
    device: str,
    probe: Probe,
    callbacks: list[Any],
    parallel: Parallel | None,
) -> None:
    import warnings

    # one epoch over exactly these batches: ``max_steps`` counts optimiser steps, and a step
    # under manual optimisation with two optimisers steps twice (it would stop half-way)
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=len(batches),
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1 if parallel is None else parallel.devices,
        strategy="auto" if parallel is None else ddp.strategy(pl, device, parallel.find_unused),
        callbacks=callbacks,
    )
    # batch_size=None: each dict is a whole batch already, passed through as it is
    data_loader: Any = torch.utils.data.DataLoader
    loader = data_loader(list(batches), batch_size=None)
    val_loader = data_loader([val_batch], batch_size=None)
    with warnings.catch_warnings(), recording(probe):
        warnings.simplefilter("ignore")  # "no num_workers", "no logger": about the harness
        trainer.fit(model, train_dataloaders=loader, val_dataloaders=val_loader)


def _holds_loss(out: Any) -> bool:
    return isinstance(out, torch.Tensor) or (isinstance(out, dict) and "loss" in out)


def run_cell(
    model: Any,
    batches: Sequence[dict[str, Any]],
    val_batch: dict[str, Any],
    device: str,
    root: Path,
    residuals: Mapping[str, str] | None = None,
    devices: int | None = None,
    find_unused: bool = False,
) -> Outcome:
    """Train ``model`` on ``batches``; a failure is kept with its place in the copy at ``root``.
    ``residuals`` (method -> the residual's local name) are read as those methods return.
    ``devices``: run under Lightning's DDP with that many ranks (a LightningModule only)."""
    lightning = lightning_module_class()
    uses_lightning = lightning is not None and isinstance(model, lightning)
    run = lightning_run if uses_lightning else plain_loop
    # made here, so that a failure keeps what the steps before it measured
    outcome = Outcome("lightning" if uses_lightning else "plain", Probe())
    try:
        with residual_watch(type(model), residuals or {}, outcome.probe):
            if devices is None:
                run(model, batches, val_batch, device, outcome)
            else:  # the caller made sure it is a LightningModule
                lightning_run(
                    model, batches, val_batch, device, outcome, Parallel(devices, root, find_unused)
                )
    except Exception as exc:  # the user's code failing is the result, not an error of trial
        message = " ".join(str(exc).split())
        outcome.error = {"type": type(exc).__name__, "message": message, "at": where_in(exc, root)}
    return outcome
