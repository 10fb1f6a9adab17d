"""The ``hdrfix`` command line. Thin: parse, call the engine, render.

Heavy modules (libcst, torch) are imported inside the commands that need them, so that
``hdrfix --help`` and ``hdrfix list`` stay instant.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hdrfix import __version__
from hdrfix.cligroup import EXIT_BAD_INPUT, Group, run_program
from hdrfix.lang.errors import shown
from hdrfix.targetoptions import repo_option, target_options

if TYPE_CHECKING:
    from hdrfix.core.repo import Repo


def _json(value: Any, indent: int) -> str:
    import json  # only for --format json: 2 ms of every other start-up

    return json.dumps(value, indent=indent)


def _use_color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hdrfix")
@click.option(
    "--plugins",
    "plugin_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also load phases from the .py modules in DIR (repeatable).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors, warnings and diffs.")
@click.option("-v", "--verbose", is_flag=True, help="Also list what is already done.")
@click.pass_context
def main(ctx: click.Context, plugin_dirs: tuple[Path, ...], quiet: bool, verbose: bool) -> None:
    """Apply the HDR log-residual review's phases to a training framework, safely.

    \b
    hdrfix apply phase1 --repo PATH --dry-run   show the diff, change nothing
    hdrfix apply phase1 --repo PATH             apply it (all files or none)
    hdrfix apply phase1 --repo PATH --check     exit 1 while the phase is pending
    """
    ctx.obj = {"plugin_dirs": plugin_dirs, "quiet": quiet, "verbose": verbose and not quiet}


def _open(ctx: click.Context, path: Path, command: str | None = None) -> Repo:
    """The repository, after finishing or undoing a commit that a killed run left behind.

    ``command`` names a command that promises not to write: it never recovers; an interrupted
    commit stops it with one line naming ``hdrfix recover`` (exit 2)."""
    from hdrfix.core.plugin import kinds
    from hdrfix.core.recovery import recover_interrupted, refuse_if_interrupted
    from hdrfix.core.repo import Repo

    repo = Repo(path)
    if command is not None:
        refuse_if_interrupted(repo.root, command)
        return repo
    registry = _phases(ctx)
    message = recover_interrupted(repo.root, lambda names: kinds(registry, names))
    if message:
        click.echo(f"hdrfix: {message}", err=True)
    return repo


def _say(ctx: click.Context, lines: Iterable[str]) -> None:
    """Informational lines on stderr, unless --quiet."""
    if not ctx.obj["quiet"]:
        for line in lines:
            click.echo(shown(line), err=True)


def _complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from hdrfix.phase_flags import complete

    return complete(ctx, param, incomplete)


def _phases(ctx: click.Context) -> dict:
    from hdrfix.phase_flags import installed

    return installed(ctx)


@main.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def list_cmd(ctx: click.Context, fmt: str) -> None:
    """List the phases hdrfix knows, with what each requires and the options it takes."""
    from hdrfix.core.plugin import resolve

    phases = _phases(ctx)
    if fmt == "json":
        from hdrfix.render import phases_json

        ordered = resolve(sorted(phases), phases, with_deps=False)
        click.echo(_json(phases_json([phases[n] for n in ordered]), indent=2))
        return
    rows = [
        (name, ", ".join(phases[name].requires) or "-", phases[name].summary)
        for name in resolve(sorted(phases), phases, with_deps=False)
    ]
    width = max([len("phase")] + [len(r[0]) for r in rows])
    rwidth = max([len("requires")] + [len(r[1]) for r in rows])
    click.echo(f"{'phase':<{width}}  {'requires':<{rwidth}}  summary")
    for name, requires, summary in rows:
        click.echo(f"{name:<{width}}  {requires:<{rwidth}}  {summary}")


def _project_options(repo: Repo, registry: dict, given: dict[str, Any]) -> dict[str, Any]:
    """The command line's options over the repository's ``.hdrfix.toml`` / ``[tool.hdrfix]``."""
    from hdrfix.core import projectconfig

    _, settings = projectconfig.load(repo.root, registry)
    return projectconfig.merged(settings, given)


def _options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What every phase's plan sees; the phase's own flags come in ``phase_options``."""
    return {k: v for k, v in kwargs.items() if k not in {"repo", "fmt"}}


@main.command()
@click.argument("phases", nargs=-1, required=True, shell_complete=_complete)
@click.option("--dry-run", is_flag=True, help="Print the unified diff; write nothing.")
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if the phases would change anything, else 0.",
)
@click.option("--with-deps", is_flag=True, help="Also apply the phases these require.")
@target_options
@click.pass_context
def apply(
    ctx: click.Context,
    phases: tuple[str, ...],
    dry_run: bool,
    check: bool,
    with_deps: bool,
    repo: Path,
    fmt: str,
    **kwargs: Any,
) -> None:
    """Apply PHASES to the repository: all files or none.

    \b
    Examples:
      hdrfix apply phase1 --repo ../framework --dry-run    the diff; nothing written
      hdrfix apply phase1 phase2 --repo ../framework       both, in one commit
      hdrfix apply phase3 --with-deps --loss moment        phase1 first, then phase3
      hdrfix apply bound --check                           in CI: exit 1 while pending

    Exit codes: 0 done or nothing to do, 1 with --check when changes are pending,
    2 bad input (nothing written), or, with --check or --dry-run, a commit that a killed run
    left half done (`hdrfix recover` finishes it).
    """
    from hdrfix import render
    from hdrfix.core.engine import commit_run, plan_run

    the_repo = _open(
        ctx, repo, "apply --check" if check else "apply --dry-run" if dry_run else None
    )
    registry = _phases(ctx)
    options = _project_options(the_repo, registry, _options({**kwargs, "repo": repo}))
    run = plan_run(the_repo, list(phases), registry, options, with_deps)
    if run.changes and not (dry_run or check):
        from hdrfix.core.gitstate import uncommitted

        dirty = uncommitted(the_repo.root, [c.rel for c in run.changes])
        if dirty:
            click.echo(
                f"hdrfix: warning: uncommitted edits in {', '.join(map(shown, dirty))} are now "
                "mixed with hdrfix's (revert takes back hdrfix's part)",
                err=True,
            )
        commit_run(the_repo.root, run, "apply " + " ".join(p.phase for p in run.plans))
    mode = "check" if check else "dry-run" if dry_run else "apply"
    if fmt == "json":
        click.echo(_json(render.run_json(run, mode), indent=2))
    else:
        if dry_run:
            for change in run.changes:
                diff = change.diff()
                click.echo(shown(render.colorize(diff) if _use_color() else diff), nl=False)
        _say(ctx, render.run_summary(run, mode, verbose=ctx.obj["verbose"]))
    if check and (run.changes or any(p.unhandled for p in run.plans)):
        sys.exit(1)


@main.command()
@click.argument("phases", nargs=-1, shell_complete=_complete)
@target_options
@click.pass_context
def status(
    ctx: click.Context, phases: tuple[str, ...], repo: Path, fmt: str, **kwargs: Any
) -> None:
    """Show the state of PHASES (default: every phase), read from the files themselves.

    Exit codes: 0, or 2 when a phase cannot be read.
    """
    from hdrfix import render
    from hdrfix.core.engine import status as phase_status
    from hdrfix.core.journal import Journal
    from hdrfix.core.revert import entry_states, in_effect_again

    the_repo = _open(ctx, repo, "status")
    registry = _phases(ctx)
    options = _project_options(the_repo, registry, _options({**kwargs, "repo": repo}))
    plans = phase_status(the_repo, registry, options, list(phases))
    journal = Journal.load(the_repo.root)
    states = entry_states(the_repo.root, journal)
    again = {e["id"]: e for e in in_effect_again(the_repo.root, journal)}
    entries = [again.get(e["id"], e) for e in journal.entries]
    if phases:
        entries = [e for e in entries if set(e["phases"]) & set(phases)]
    if fmt == "json":
        click.echo(_json(render.status_json(plans, entries, states), indent=2))
    else:
        for line in render.status_lines(plans, entries, states):
            click.echo(shown(line))
    if any(plan.error for plan in plans):
        sys.exit(EXIT_BAD_INPUT)


@main.command()
@click.argument("phases", nargs=-1, shell_complete=_complete)
@repo_option("The checkout.")
@click.option("--dry-run", is_flag=True, help="Print the diff that reverting would make.")
@click.option(
    "--force-structural",
    is_flag=True,
    help="For files edited since, take back only hdrfix's hunks, by context.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def revert(
    ctx: click.Context,
    phases: tuple[str, ...],
    repo: Path,
    dry_run: bool,
    force_structural: bool,
    fmt: str,
) -> None:
    """Take back recorded applies of PHASES; with none, the last apply (see .hdrfix/journal.json).

    Exit codes: 0 reverted or nothing to do, 2 refused (nothing written).
    """
    from hdrfix import render
    from hdrfix.core.commit import commit
    from hdrfix.core.revert import plan_revert

    root = _open(ctx, repo, "revert --dry-run" if dry_run else None).root
    plan = plan_revert(root, list(phases), _phases(ctx), force_structural)
    if not (plan.nothing or dry_run):
        assert plan.journal is not None  # set whenever there is something to do
        commit(root, plan.changes + [plan.journal], " ".join(["revert", *phases]))
    if fmt == "json":
        click.echo(_json(render.revert_json(plan, dry_run), indent=2))
        return
    if plan.nothing:
        _say(ctx, [plan.nothing])
        return
    if dry_run:
        for change in plan.changes:
            diff = change.diff()
            click.echo(shown(render.colorize(diff) if _use_color() else diff), nl=False)
        return
    _say(ctx, render.revert_lines(plan))


@main.command()
@repo_option("The checkout.")
@click.pass_context
def recover(ctx: click.Context, repo: Path) -> None:
    """Finish or undo a commit that a killed run left half done (.hdrfix/intent.json).

    apply and revert do this first by themselves; status, --check and --dry-run never write,
    so they stop and name this command instead. Exit codes: 0 done or nothing to do, 2 refused.
    """
    from hdrfix.core.recovery import interrupted
    from hdrfix.core.repo import Repo

    if not interrupted(Repo(repo).root):
        _say(ctx, ["nothing to do: no interrupted commit"])
        return
    _open(ctx, repo)


def _register_validate() -> None:
    from hdrfix.validate.cli import validate

    main.add_command(validate)


_register_validate()


def _register_trial() -> None:
    from hdrfix.trial.cli import trial

    main.add_command(trial)


_register_trial()


def run() -> None:
    """The ``hdrfix`` script and ``python -m hdrfix``: :func:`main` as the program."""
    run_program(main)
