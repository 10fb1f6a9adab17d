"""The ``hdrfix validate`` command.

Only click is imported here: torch and matplotlib are imported inside the command, so that
``hdrfix --help`` stays instant and works without torch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

# The run's defaults (hdrfix.validate.run imports torch, so they are repeated here for --help;
# tests/test_validate.py checks they agree).
DEFAULT_STEPS = 300
DEFAULT_BATCH = 4
DEFAULT_SIZE = "48x48"
DEFAULT_EVAL_BATCHES = 32

#: Seconds between progress lines when stderr is no terminal (a test sets 0: a line per step).
PROGRESS_INTERVAL_S = 5.0
#: In the report folder: what the framework printed while it trained, and its warnings.
LOG_NAME = "validate.log"


def default_report_dir() -> Path:
    """Where the report goes without --report: the user's cache, not the current folder.

    validate trains a copy of the bundled fixture, not the folder it runs in, so nothing ties
    the report to the current directory; written there, it would turn up as an untracked
    folder in whatever repository the user stands in. The path is printed at the end.
    """
    import os

    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / "hdrfix" / "validate"


@click.command()
@click.option(
    "--variants",
    metavar="LIST",
    help="Comma-separated variants; a variant is `base` or phases joined by `+`, "
    "e.g. phase1+phase2. Default: base, and each installed phase with the phases it "
    "requires (base,bound,phase1,phase1+phase2,phase1+phase3 with the built-ins).",
)
@click.option("--steps", type=int, help=f"Training steps per variant (default {DEFAULT_STEPS}).")
@click.option("--batch", type=int, help=f"Frames per batch (default {DEFAULT_BATCH}).")
@click.option("--size", metavar="HxW", help=f"Frame size (default {DEFAULT_SIZE}).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds the initial weights and the synthetic frames.",
)
@click.option(
    "--eval-batches",
    type=int,
    help=f"Held-out batches to evaluate on (default {DEFAULT_EVAL_BATCHES}).",
)
@click.option(
    "--threads",
    type=int,
    help="Variants trained at once, each in a process of its own with one torch thread "
    "(default: the cores other processes leave free now). The figures are the same at any "
    "value.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for report.json and report.png (default: ~/.cache/hdrfix/validate, or "
    "$XDG_CACHE_HOME/hdrfix/validate; the path is printed at the end).",
)
@click.option(
    "--network-from",
    type=click.Path(path_type=Path),
    metavar="REPO",
    help="Train the PatchNetwork of this repository (patched the same way) inside "
    "the fixture trainer, which feeds it [N, 7, H, W]: warped RGB, holes, occlusion, motion. "
    "Its file is loaded directly, not through its package's __init__.",
)
@click.option(
    "--network",
    metavar="FILE",
    help="With --network-from: the file defining PatchNetwork, where several do.",
)
@click.pass_context
def validate(
    ctx: click.Context,
    variants: str | None,
    steps: int | None,
    batch: int | None,
    size: str | None,
    device: str,
    seed: int,
    eval_batches: int | None,
    threads: int | None,
    report_dir: Path | None,
    network_from: Path | None,
    network: str | None,
) -> None:
    """Train the untouched and the patched framework side by side on synthetic HDR frames.

    Each variant is a fresh copy of the bundled fixture framework with its phases applied
    exactly as `hdrfix apply` would; all start from the same weights and see the same frames.
    Prints overflow, frame and hole-region error, residual statistics, step time and memory
    per variant with the change against base, and writes report.json and report.png.

    \b
    hdrfix validate
    hdrfix validate --variants base,phase1,bound --steps 600 --size 64x64
    hdrfix validate --device cuda --size 270x480 --steps 400
    hdrfix validate --network-from path/to/your/framework --device cuda
    """
    need_torch()
    from hdrfix.core.plugin import discover
    from hdrfix.validate import report
    from hdrfix.validate import run as engine
    from hdrfix.validate import variants as variant_specs

    started = time.perf_counter()
    plugin_dirs = (ctx.obj or {}).get("plugin_dirs", ()) if isinstance(ctx.obj, dict) else ()
    phases = discover(plugin_dirs)
    notes: list[str] = []
    if variants is None:
        chosen, notes = variant_specs.default_variants(phases)
    else:
        chosen = variant_specs.parse_variants(variants, phases)
    height, width = engine.parse_size(size) if size else engine.DEFAULT_SIZE
    settings = engine.Settings(
        variants=chosen,
        steps=engine.DEFAULT_STEPS if steps is None else steps,
        batch=engine.DEFAULT_BATCH if batch is None else batch,
        height=height,
        width=width,
        device=device,
        seed=seed,
        eval_batches=engine.DEFAULT_EVAL_BATCHES if eval_batches is None else eval_batches,
        network_from=network_from,
        network=network,
        threads=threads,
        notes=notes,
    )
    settings.check()
    if report_dir is None:
        report_dir = default_report_dir()
    _report_folder(report_dir)
    quiet = isinstance(ctx.obj, dict) and bool(ctx.obj.get("quiet"))
    if not quiet:
        for note in notes:
            click.echo(f"hdrfix: note: {note}", err=True)

    log = report_dir / LOG_NAME
    progress = None
    if not quiet:
        from hdrfix.validate.progress import Progress

        progress = Progress(
            sys.stderr,
            [v.name for v in settings.variants],
            settings.steps,
            engine.timing_rounds(settings.steps),
            terminal=sys.stderr.isatty(),
            interval=PROGRESS_INTERVAL_S,
        )
    try:
        result = engine.run(
            settings,
            phases,
            on_step=progress.step if progress else None,
            on_timing=progress.timing if progress else None,
            log=log,
        )
    finally:
        if progress:
            progress.close()

    written = report.write_all(result, report_dir)
    for line in report.table(result):
        click.echo(line)
    if not quiet:
        click.echo()
        for line in report.footer(result):
            click.echo(line)
    logged = f", {log} (what the framework printed)" if log.is_file() and log.stat().st_size else ""
    click.echo(
        f"report: {written['json']}, {written['png']}{logged} "
        f"({time.perf_counter() - started:.1f} s)"
    )


def _report_folder(folder: Path) -> None:
    """Fail before training, not after, when the report cannot be written (creates nothing)."""
    import os

    from hdrfix.lang.errors import HdrfixError

    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise HdrfixError(
            f"cannot create the report folder: {existing} is a file",
            str(folder),
            hint="choose another with --report DIR",
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise HdrfixError(
            "the report folder is not writable",
            str(folder),
            hint="choose another with --report DIR",
        )


def need_torch(command: str = "validate") -> None:
    """validate and trial train networks: without the torch extra, say how to get it (exit 2),
    naming the command the user ran."""
    import importlib.util

    from hdrfix.lang.errors import HdrfixError

    missing = [m for m in ("torch", "numpy", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise HdrfixError(
            f"{command} needs {', '.join(missing)}, which is not installed",
            hint="pip install 'hdrfix[torch]'",
        )
