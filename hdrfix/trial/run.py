"""The trial: for each variant a patched copy, its trainer imported, a cell trained per mode."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hdrfix.lang.errors import HdrfixError
from hdrfix.trial import batches as batch_format
from hdrfix.trial import loading, trainer_source
from hdrfix.trial.constructor import build_trainer, constructor_arguments
from hdrfix.trial.copies import Copy, make_copy
from hdrfix.trial.logmode import blow_up
from hdrfix.trial.output import FrameworkOutput
from hdrfix.trial.probe import Probe
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
    log_path: Path | None = None  # where the framework's own prints go
    devices: int | None = None  # ranks under Lightning's DDP; None: one process, no strategy
    find_unused: bool = False  # DDP's find_unused_parameters, as the user's own run sets it

    @property
    def batches_per_cell(self) -> int:
        """Each rank takes ``steps`` batches of its own from Lightning's distributed sampler."""
        return self.steps * (self.devices or 1)


@dataclass
class Cell:
    variant: str
    mode: str
    outcome: Outcome
    seconds: float
    unset: str | None = None  # why the trainer did not take this mode (then nothing trained)


@dataclass
class Result:
    settings: Settings
    trainer: loading.Trainer
    cells: list[Cell] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    stubbed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # variant -> its phase's one line
    source: trainer_source.TrainerSource = field(default_factory=trainer_source.TrainerSource)
    passed: dict[str, str] = field(default_factory=dict)  # constructor parameter -> what it got
    mode_key: tuple[str, ...] | None = None  # where the mode was set in the config
    blown_up: str | None = None  # the layer whose output log mode blew up
    framework_lines: int = 0


def make_batches(settings: Settings) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The same training batches for every cell, and one held-out batch to validate on."""
    make = settings.batch_fn or batch_format.field_batch
    try:
        made = [
            make(settings.batch, settings.height, settings.width, settings.seed + i)
            for i in range(settings.batches_per_cell + 1)
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
    settings: Settings,
    module: Any,
    trainer: loading.Trainer,
    root: Path,
    mode: str,
    result: Result,
) -> tuple[Any, dict[str, Any]]:
    """The trainer built for ``mode``, the mode set where the trainer's source reads it."""
    cls = getattr(module, trainer.class_name)
    config = loading.load_config(root, trainer, mode)
    sections = constructor_arguments(cls, config).sections
    key = result.source.config_path(sections) or trainer_source.DEFAULT_MODE_KEY
    result.mode_key = key
    config = loading.load_config(root, trainer, mode, key)
    torch.manual_seed(settings.seed)  # every variant starts from the same weights
    if settings.trainer_factory is None:
        arguments = constructor_arguments(cls, config)
        result.passed = arguments.passed
        return build_trainer(cls, trainer.rel, arguments), config
    try:
        return settings.trainer_factory(module, config), config
    except Exception as exc:  # the user's factory
        raise HdrfixError(
            f"--trainer-factory fails ({type(exc).__name__}: {exc})",
            hint="it is called as function(trainer_module, config) -> the trainer",
        ) from None


def mode_not_taken(model: Any, attr: str | None, mode: str) -> str | None:
    """Why the built trainer is not in ``mode`` (its dispatch attribute says another), or None."""
    if attr is None:
        return None
    value = getattr(model, attr, None)
    if not isinstance(value, str) or value.strip().lower() == mode.lower():
        return None
    return f"the trainer's {attr} is {value!r}"


def _copies(settings: Settings, registry: Mapping[str, type[Phase]], tmp: Path, result: Result):
    """Every copy first: a variant whose phase refuses is a row, before anything trains."""
    copies: list[Copy] = []
    for variant in settings.variants:
        try:
            copies.append(make_copy(settings.repo, variant, registry, settings.options, tmp))
        except HdrfixError as exc:
            if not variant.phases:
                raise
            result.refused[variant.name] = str(exc)
    return copies


def run(
    settings: Settings,
    registry: Mapping[str, type[Phase]],
    on_cell: Callable[[Cell], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Result:
    """Every cell trained; ``on_start(number of cells)`` once the copies are made, then
    ``on_cell(cell)`` as each ends (with the terminal's streams, not the framework's log)."""
    from hdrfix.validate.importing import isolated_imports
    from hdrfix.validate.network import user_tops

    trainer = loading.find_trainer(settings.repo, settings.options)
    result = Result(settings, trainer)
    make_batches(settings)  # a --batch-fn that fails, fails before any copy is made
    output = FrameworkOutput(settings.log_path)
    with tempfile.TemporaryDirectory(prefix="hdrfix-trial-") as tmp:
        copies = _copies(settings, registry, Path(tmp), result)
        # read from the untouched copy (base, always first): what trial sets and watches
        result.source = trainer_source.read(copies[0].root, trainer.rel, trainer.class_name)
        if on_start is not None:
            on_start(len(copies) * len(settings.modes))
        with output.capturing():
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
                        cell = _cell(settings, module, trainer, copy, mode, result)
                        result.cells.append(cell)
                        if on_cell is not None:
                            with output.outside():
                                on_cell(cell)
    result.framework_lines = output.lines()
    return result


def _cell(
    settings: Settings,
    module: Any,
    trainer: loading.Trainer,
    copy: Copy,
    mode: str,
    result: Result,
) -> Cell:
    started = time.perf_counter()
    model, _ = _trainer_for(settings, module, trainer, copy.root, mode, result)
    unset = mode_not_taken(model, result.source.mode_attr, mode)
    if unset is not None:
        return Cell(copy.variant.name, mode, Outcome("-", Probe()), 0.0, unset=unset)
    if mode == "log":
        result.blown_up = blow_up(model, result.source.network_attrs)
    if settings.devices is not None:
        needs_lightning(model, trainer)
    batches, val_batch = make_batches(settings)
    outcome = run_cell(
        model,
        batches,
        val_batch,
        settings.device,
        copy.root,
        result.source.residuals,
        settings.devices,
        settings.find_unused,
    )
    return Cell(copy.variant.name, mode, outcome, time.perf_counter() - started)


def needs_lightning(model: Any, trainer: loading.Trainer) -> None:
    """DDP is Lightning's here: a trainer of another kind has no strategy to run under."""
    from hdrfix.trial.training import lightning_module_class

    lightning = lightning_module_class()
    if lightning is None or not isinstance(model, lightning):
        raise HdrfixError(
            f"--strategy ddp runs a LightningModule under Lightning's DDP; "
            f"{trainer.class_name} is not one",
            trainer.rel,
            hint="leave out --devices/--strategy to train it in one process",
        )


def with_base(variants: Sequence[Variant]) -> list[Variant]:
    """ "Breaks" compares against the untouched trainer, so base always runs, first."""
    from hdrfix.validate.variants import Variant

    rest = [v for v in variants if v.phases]
    return [Variant("base", ()), *rest]
