"""The options every command that plans phases on a repository shares (``apply``,
``status``, ``trial``): where the repository is, which of its files to take, ``--set`` and
``--format``. One module, so the commands agree and none imports another's privates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click


def target_options(func: Callable) -> Callable:
    """Add the options every command that plans phases takes, in one order."""
    options = [
        click.option(
            "--repo",
            type=click.Path(file_okay=False, path_type=Path),
            default=".",
            show_default=True,
            help="The framework checkout to migrate.",
        ),
        click.option(
            "--config",
            multiple=True,
            metavar="FILE",
            help="Only these YAML configs (repeatable); default: every YAML file "
            "holding normalization.log_delta_abs_max.",
        ),
        click.option(
            "--framework",
            metavar="FILE",
            help="The trainer file; default: train/patch_training_framework.py, "
            "else the one trainer with log-domain sites.",
        ),
        click.option(
            "--network",
            metavar="FILE",
            help="The file defining PatchNetwork; default: found by its class.",
        ),
        click.option(
            "--include",
            multiple=True,
            metavar="PATH",
            help="Also patch log-domain sites in this file (repeatable).",
        ),
        click.option(
            "--exclude",
            multiple=True,
            metavar="PATH",
            help="Leave this file's log-domain sites alone on purpose (repeatable).",
        ),
        click.option(
            "--set",
            "extra",
            multiple=True,
            metavar="PHASE.KEY=VALUE",
            help="A phase's option by name, typed like its flag (repeatable).",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
