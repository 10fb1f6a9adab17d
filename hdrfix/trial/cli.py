"""The ``hdrfix trial`` command. torch (and the user's code) is imported inside the command."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from hdrfix.targetoptions import target_options

DEFAULT_MODES = "log,global,per_patch,none"


def _devices(devices: int | None, strategy: str | None) -> int | None:
    """How many DDP ranks a cell runs (None: one process, no strategy)."""
    if devices is None and strategy is None:
        return None
    return devices or 1


def default_report_dir() -> Path:
    from hdrfix.validate.cli import default_report_dir as validate_dir

    return validate_dir().parent / "trial"


@click.command()
@click.option(
    "--variants",
    metavar="LIST",
    help="Comma-separated variants: base, or phases joined by + (phase1+phase2). Default: "
    "base and each installed phase with its requirements. base always runs: a break is "
    "judged against it.",
)
@click.option("--modes", default=DEFAULT_MODES, show_default=True, metavar="LIST",
              help="normalization.type values to train in.")  # fmt: skip
@click.option("--steps", type=click.IntRange(1), default=3, show_default=True)
@click.option("--batch", type=click.IntRange(1), default=2, show_default=True)
@click.option(
    "--size",
    default="64x64",
    show_default=True,
    metavar="HxW",
    help="Frame size. A discriminator of 5 stride-2 layers needs 64x64.",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--devices",
    type=click.IntRange(1),
    metavar="N",
    help="Run each cell under Lightning's DDP with N ranks (N processes on CPU, with gloo; N "
    "GPUs with --device cuda). Implies --strategy ddp.",
)
@click.option(
    "--find-unused-parameters",
    "find_unused",
    is_flag=True,
    help="With --strategy ddp: DDP's find_unused_parameters=True, for a run that sets it "
    "(Lightning's ddp_find_unused_parameters_true); unused parameters are then listed, "
    "not a failure.",
)
@click.option(
    "--strategy",
    type=click.Choice(["ddp"]),
    help="ddp: Lightning's DDPStrategy, ranks started by fork (as ddp_notebook), "
    "find_unused_parameters=False; each cell also checks that every rank finished, that no "
    "parameter went unused in a step, and that every parameter is identical across ranks.",
)
@click.option(
    "--stub-module",
    "stub_modules",
    multiple=True,
    metavar="NAME",
    help="Insert an empty module for an import your environment lacks and the trained code "
    "does not use (repeatable), e.g. cv2 for the bundled fixture's package __init__.",
)
@click.option(
    "--trainer-factory",
    metavar="MODULE:FUNCTION",
    help="Build the trainer yourself: called as function(trainer_module, config), config "
    "being the repo's with the mode and the small network already set.",
)
@click.option(
    "--batch-fn",
    metavar="MODULE:FUNCTION",
    help="Make your batches: called as function(batch_size, height, width, seed) -> dict.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for report.json (default ~/.cache/hdrfix/trial).",
)
@target_options
@click.pass_context
def trial(ctx: click.Context, repo: Path, fmt: str, **kwargs: Any) -> None:
    """Train your own trainer, patched per variant, a few steps in every normalization mode.

    Each variant is a temporary copy of the repository's git-tracked .py/.yaml files with its
    phases applied as `hdrfix apply` would (same --config/--framework/--include/--exclude and
    .hdrfix.toml; phase flags at their defaults). A cell is a variant in a mode: it "trains"
    when every step ran with finite losses; it "breaks" when base trains in that mode and the
    variant does not (exit 1); a mode base cannot train is shown "fails untouched" and
    blamed on no phase. A variant whose phase refuses to apply is a row "refused: <its
    line>"; the others still run. The framework's own prints go to framework.log in the
    report folder.

    \b
    What trial assumes about your code (each has a flag where it does not hold):
    - trainer file: the one apply patches (--framework); the trainer class is the one class
      in it defining training_step.
    - import: the trainer's module is imported from the copy by its dotted path, with the
      repo root and the trainer's folder on sys.path. A missing import stops the run
      (exit 2) naming it; --stub-module NAME stands in an empty module.
    - constructor: parameters named <section>_config get that config section
      (model_config: model: or network:, training_config: training:, data_config: data:),
      full_config/config the whole config; an absent section, or a parameter annotated
      with a type that is not a mapping, keeps its default ({} where it has none). The
      footer says what each parameter got. Other required parameters: --trainer-factory.
    - config: the repo's training config (the one apply edits, --config), with the mode
      set per cell and network/model base_channels set to 4. The mode goes where the
      trainer reads it: the attribute its steps compare with 'log' is followed back to
      its config key (normalization.type where it cannot be followed); a trainer that,
      built, holds another mode is shown "mode not set" for that cell, never trained.
    - batches: the field's format, patch_input [N,7,H,W] (warped RGB, holes, occlusion,
      motion 2), patch_target_rgb, patch_target_residual, HDR radiance e^-6..e^9;
      training_step reading another batch key stops the run: --batch-fn.
    - training: a pytorch_lightning LightningModule runs under a real Lightning Trainer
      (one epoch of --steps batches, so manual optimisation with several optimisers counts
      right; one validation batch, no logger/checkpoint/sanity check); anything else a
      plain loop: training_step -> loss (or its 'loss'), backward, the first optimiser of
      configure_optimizers (AdamW if unusable, noted), one validation_step.
    - --devices N / --strategy ddp: a LightningModule only; Lightning's DDPStrategy starts
      N ranks by fork (as ddp_notebook: the ddp launcher would re-run this command per rank),
      gloo on CPU, nccl with --device cuda; Lightning's sampler gives each rank --steps
      batches of its own. A cell then also needs every rank to finish, every parameter to get
      a gradient in every step (unless --find-unused-parameters) and every parameter to be
      identical across ranks at the end.
    - log mode: the output layer of the network the log arm calls (its last layer with
      weights) answers x * 1e4 + 50, so the residual saturates whatever bounds it.
    - metrics: every torch.exp / Tensor.exp output shaped [N,3,H,W] is taken as the
      reconstruction (max exp, values > 65504: the worst single output); max |delta_log|
      is the residual the trainer's steps hold as they return (and
      self.last_log_branch['delta_log'] where the trainer keeps one). An exp imported by
      name (from torch import exp) is not seen: its columns show "-".

    \b
    hdrfix trial --repo ../framework --exclude tools/diagnose_overflow.py
    hdrfix trial --variants base,phase1,bound --modes log,global --steps 5
    hdrfix trial --stub-module cv2 --format json

    Exit codes: 0 nothing breaks, 1 a variant breaks a mode, 2 bad input (one line).
    """
    from hdrfix.validate.cli import need_torch

    need_torch("trial")
    from hdrfix.core.plugin import discover
    from hdrfix.trial import table
    from hdrfix.trial.copies import apply_options
    from hdrfix.trial.loading import user_function
    from hdrfix.trial.progress import CellLines
    from hdrfix.trial.run import Settings, run, with_base
    from hdrfix.validate import variants as variant_specs
    from hdrfix.validate.settings import parse_size

    started = time.perf_counter()
    registry = discover((ctx.obj or {}).get("plugin_dirs", ()))
    spec = kwargs.pop("variants")
    chosen = (
        variant_specs.default_variants(registry)[0]
        if spec is None
        else variant_specs.parse_variants(spec, registry)
    )
    modes = [m.strip() for m in kwargs.pop("modes").split(",") if m.strip()]
    height, width = parse_size(kwargs.pop("size"))
    factory, batch_fn = kwargs.pop("trainer_factory"), kwargs.pop("batch_fn")
    report_dir = kwargs.pop("report_dir") or default_report_dir()
    settings = Settings(
        repo=repo,
        variants=with_base(chosen),
        modes=modes or ["log"],
        steps=kwargs.pop("steps"),
        batch=kwargs.pop("batch"),
        height=height,
        width=width,
        device=kwargs.pop("device"),
        seed=kwargs.pop("seed"),
        stub_modules=kwargs.pop("stub_modules"),
        trainer_factory=user_function(factory, "--trainer-factory") if factory else None,
        batch_fn=user_function(batch_fn, "--batch-fn") if batch_fn else None,
        options={},
        log_path=report_dir / "framework.log",
        devices=_devices(kwargs.pop("devices"), kwargs.pop("strategy")),
        find_unused=kwargs.pop("find_unused"),
    )
    if kwargs.pop("extra", ()):
        from hdrfix.lang.errors import HdrfixError

        raise HdrfixError(
            "trial runs each phase with its default options; --set is not supported",
            hint="put the options in the repository's .hdrfix.toml, which trial reads",
        )
    settings.options = apply_options(repo, registry, kwargs)

    quiet = fmt != "text" or bool((ctx.obj or {}).get("quiet"))
    lines = CellLines(sys.stderr, quiet=quiet)
    result = run(settings, registry, on_cell=lines, on_start=lines.start)
    written = table.write(result, report_dir)
    if fmt == "json":
        import json

        click.echo(json.dumps(table.as_json(result), indent=2, default=str))
    else:
        for line in table.table(result) + [""] + table.footer(result):
            click.echo(line)
        click.echo(f"report: {written} ({time.perf_counter() - started:.1f} s)")
    if table.breaks(result):
        sys.exit(1)
