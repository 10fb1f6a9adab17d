"""The options every command that plans phases on a repository shares (``apply``,
``status``, ``trial``): where the repository is, which of its files to take, ``--set`` and
``--format``. One module, so the commands agree and none imports another's privates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from hdrfix.lang.errors import HdrfixError


def _working_tree(start: Path) -> Path | None:
    """The root of the git working tree holding ``start``, as ``git rev-parse --show-toplevel``
    gives it; without git on PATH, the nearest folder above holding ``.git``."""
    import subprocess  # only without --repo: --help and commands given one need no git

    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=start,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return next((p for p in (start, *start.parents) if (p / ".git").exists()), None)
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def _repo_root(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    """``--repo`` as given; without it, the working tree's root (as git, ruff and pre-commit
    find theirs), so hdrfix runs from any folder of the checkout and never scans beyond it."""
    if value is not None:
        return value
    root = _working_tree(Path.cwd())
    if root is None:
        raise HdrfixError(
            f"{Path.cwd()} is not inside a git working tree",
            hint="run hdrfix in your checkout, or pass --repo PATH",
        )
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and obj.get("verbose"):
        click.echo(f"hdrfix: repository root: {root} (the git working tree)", err=True)
    return root


def repo_option(help_text: str = "The framework checkout to migrate.") -> Callable:
    return click.option(
        "--repo",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        callback=_repo_root,
        help=f"{help_text} Default: the root of the git working tree you are in.",
    )


def target_options(func: Callable) -> Callable:
    """Add the options every command that plans phases takes, in one order."""
    options = [
        repo_option(),
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
