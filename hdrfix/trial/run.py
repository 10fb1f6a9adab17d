"""The trial: for each variant a patched copy, its trainer imported, a cell trained per mode."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hdrfix.core.errors import HdrfixError
from hdrfix.trial import batches as batch_format
from hdrfix.trial import loading
from hdrfix.trial.copies import make_copy
from hdrfix.trial.training import Outcome, run_cell

if TYPE_CHECKING:
    from hdrfix.core.plugin import Phase
    from hdrfix.validate.variants import Variant


@dataclass
class Settings:
    repo: Path
    variants: list[Variant]
    modes: list[str]
    options: dict[str, Any]
    steps: int = 3
    batch: int = 2
    height: int = 32
    width: int = 32
    device: str = "cpu"
    seed: int = 0
    stub_modules: tuple[str, ...] = ()
    trainer_factory: Callable[..., Any] | None = None
    batch_fn: Callable[..., dict[str, Any]] | None = None


@dataclass
class Cell:
    variant: str
    mode: str
    outcome: Outcome
    seconds: float


@dataclass
class Result:
    settings: Settings
    trainer: loading.Trainer
    cells: list[Cell] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    stubbed: list[str] = field(default_factory=list)


def make_batches(settings: Settings) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The same training batches for every cell, and one held-out batch to validate on."""
    make = settings.batch_fn or batch_format.field_batch
    try:
        made = [
            make(settings.batch, settings.height, settings.width, settings.seed + i)
            for i in range(settings.steps + 1)
        ]
    except Exception as exc:  # the user's --batch-fn
        raise HdrfixError(
            f"--batch-fn fails ({type(exc).__name__}: {exc})",
            hint="it is called as function(batch_size, height, width, seed) -> dict",
        ) from None
    if not all(isinstance(b, dict) for b in made):
        raise HdrfixError("--batch-fn must return a dict of tensors")
    return made[:-1], made[-1]


def _trainer_for(
    settings: Settings, module: Any, trainer: loading.Trainer, config: dict[str, Any]
) -> Any:
    if settings.trainer_factory is None:
        return loading.build_trainer(module, trainer, config)
    try:
        return settings.trainer_factory(module, config)
    except Exception as exc:  # the user's factory
        raise HdrfixError(
            f"--trainer-factory fails ({type(exc).__name__}: {exc})",
            hint="it is called as function(trainer_module, config) -> the trainer",
        ) from None


def run(
    settings: Settings,
    registry: Mapping[str, type[Phase]],
    on_cell: Callable[[Cell], None] | None = None,
) -> Result:
    from hdrfix.validate.importing import isolated_imports
    from hdrfix.validate.network import user_tops

    trainer = loading.find_trainer(settings.repo, settings.options)
    result = Result(settings, trainer)
    make_batches(settings)  # a --batch-fn that fails, fails before any copy is made
    with tempfile.TemporaryDirectory(prefix="hdrfix-trial-") as tmp:
        # every copy first: a phase that refuses stops the run before anything trains
        copies = [
            make_copy(settings.repo, v, registry, settings.options, Path(tmp))
            for v in settings.variants
        ]
        for copy in copies:
            result.changed[copy.variant.name] = copy.changed
            tops = user_tops(copy.root, trainer.rel)
            with (
                isolated_imports(tops),
                loading.stubbed(settings.stub_modules) as stubbed,
            ):
                result.stubbed = stubbed
                module = loading.import_trainer(copy.root, trainer)
                cls = getattr(module, trainer.class_name)
                if settings.batch_fn is None:
                    batch_format.check_format(cls.training_step, trainer.class_name)
                for mode in settings.modes:
                    cell = _cell(settings, module, trainer, copy.root, copy.variant, mode)
                    result.cells.append(cell)
                    if on_cell is not None:
                        on_cell(cell)
    return result


def _cell(
    settings: Settings,
    module: Any,
    trainer: loading.Trainer,
    root: Path,
    variant: Variant,
    mode: str,
) -> Cell:
    started = time.perf_counter()
    config = loading.load_config(root, trainer, mode)
    torch.manual_seed(settings.seed)  # every variant starts from the same weights
    model = _trainer_for(settings, module, trainer, config)
    batches, val_batch = make_batches(settings)
    outcome = run_cell(model, batches, val_batch, settings.device, root)
    return Cell(variant.name, mode, outcome, time.perf_counter() - started)


def with_base(variants: Sequence[Variant]) -> list[Variant]:
    """ "Breaks" compares against the untouched trainer, so base always runs, first."""
    from hdrfix.validate.variants import Variant

    rest = [v for v in variants if v.phases]
    return [Variant("base", ()), *rest]
