"""``hdrfix migrate-checkpoint``: phase2's own command, for checkpoints saved before it."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("migrate-checkpoint")
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Training config to read log_delta_alpha * log_delta_abs_max from.",
)
@click.option(  # text: phase2's Option converts and checks it, as it does --scale-init of apply
    "--scale-init", metavar="FLOAT", help="Value for residual_output_scale (overrides)."
)
@click.option(
    "--weights-only",
    is_flag=True,
    help="Migrate the weights alone; a Lightning checkpoint's optimizer_states stay as they "
    "were (resume with a fresh optimizer).",
)
def migrate_checkpoint(
    src: Path, dest: Path, config: Path | None, scale_init: str | None, weights_only: bool
) -> None:
    """Add phase2's residual_output_scale to a checkpoint so it loads with strict=True.

    For a Lightning checkpoint the optimizer's state gets the new parameter too (zero moments,
    its group's step), so Trainer.fit(ckpt_path=...) resumes; lr_schedulers stay as they were.
    DDP/DataParallel checkpoints (keys under module.) are read as they are."""
    from hdrfix_plugins.phase2 import checkpoint

    report = checkpoint.migrate_checkpoint(
        src, dest, config=config, scale_init=scale_init, weights_only=weights_only
    )
    for line in checkpoint.report_lines(report):
        click.echo(line)
