"""The ``hdrfix`` group itself: one way every bad input ends (one line, exit 2, JSON under
``--format json``), ``-q``/``-v`` anywhere on the line, phase flags and phase commands added from
the installed phases, and the cycle collector off for commands that plan and exit."""

from __future__ import annotations

import gc
import itertools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from hdrfix.lang.errors import HdrfixError, shown

EXIT_BAD_INPUT = 2
_LISTING = "hdrfix.listing"  # set while --help lists the commands
#: Commands that plan and exit (not validate or trial, which train).
SHORT_LIVED = frozenset({"apply", "status", "revert", "list"})


def _fail(exc: HdrfixError, as_json: bool = False) -> None:
    if as_json:
        import json

        fields = {"error": exc.message, "path": exc.path, "line": exc.line, "hint": exc.hint}
        click.echo(json.dumps({"exit": EXIT_BAD_INPUT, **fields}), err=True)
    else:
        click.echo(shown(f"hdrfix: error: {exc}"), err=True)
    sys.exit(EXIT_BAD_INPUT)


def _wants_json(args: list[str]) -> bool:
    """Whether the command line asks for ``--format json`` (errors then come as JSON too)."""
    return "--format=json" in args or any(
        a == "--format" and b == "json" for a, b in itertools.pairwise(args)
    )


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``-q``/``-v`` after the subcommand mean what they mean before it (as in git and ruff)."""
    if not value:
        return
    obj = ctx.find_root().obj
    if not isinstance(obj, dict):
        return
    if param.name == "quiet":
        obj["quiet"], obj["verbose"] = True, False
    elif not obj.get("quiet"):
        obj["verbose"] = True


def _with_verbosity(command: click.Command) -> click.Command:
    """The command, taking ``-q``/``-v`` too (once, whichever way it was built)."""
    have = {name for p in command.params for name in getattr(p, "opts", [])}
    for flags, help_text in (
        (("-q", "--quiet"), "Print only errors, warnings and diffs (also before the command)."),
        (("-v", "--verbose"), "Say more (also before the command)."),
    ):
        if not have & set(flags):
            command.params.append(
                click.Option(
                    list(flags),
                    is_flag=True,
                    expose_value=False,
                    callback=_set_verbosity,
                    help=help_text,
                )
            )
    return command


class Group(click.Group):
    """Every bad input ends the same way: one line on stderr, exit code 2. ``apply`` and
    ``status`` get the flags of the installed phases (``--plugins`` ones included)."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if name in SHORT_LIVED:
            _short_lived[0] = True
        if name in SHORT_LIVED and gc.isenabled():
            # These commands parse the user's code and exit: the syntax trees they build live
            # until the end, and Python's cycle collector walked them again and again (a fifth
            # of a dry-run on a 3,000-line trainer). Where hdrfix is the program, its exit frees
            # them; a program calling it (a test, an editor) gets its collector back, and that
            # re-enabled collector's first pass alone costs a tenth of a second.
            gc.disable()
            if not _is_program():
                ctx.call_on_close(gc.enable)
        return name, command, rest

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        if parent is None and "terminal_width" not in extra:
            extra["terminal_width"] = help_width(extra.get("max_content_width"))
        return super().make_context(info_name, args, parent, **extra)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["hdrfix.args"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HdrfixError as exc:
            _fail(exc, _wants_json(ctx.meta.get("hdrfix.args", [])))

    def list_commands(self, ctx: click.Context) -> list[str]:
        from hdrfix import phase_flags

        return sorted({*super().list_commands(ctx), *self._guarded(phase_flags.commands, ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from hdrfix import phase_flags

        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = self._guarded(phase_flags.commands, ctx).get(cmd_name)
        elif cmd_name in phase_flags.COMMANDS and not ctx.meta.get(_LISTING):
            phases = self._guarded(phase_flags.installed, ctx)
            command = phase_flags.with_flags(command, phases)
        return None if command is None else _with_verbosity(command)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of commands needs their one-line help, not the phases' flags of each."""
        ctx.meta[_LISTING] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            del ctx.meta[_LISTING]

    @staticmethod
    def _guarded(build: Callable[..., Any], *args: Any) -> Any:
        """Discovering the phases can fail (a broken ``--plugins`` module): one line, exit 2."""
        try:
            return build(*args)
        except HdrfixError as exc:
            _fail(exc)


def help_width(max_width: int | None) -> int | None:
    """The width click's help formatter picks (``shutil.get_terminal_size``, at most
    ``max_width`` less 2, at least 50), worked out without importing ``shutil``: that import
    (with the compression modules it pulls in) was 4% of ``hdrfix --help``. Subcommands inherit
    it. None where click's test runner forces a width: click applies it then."""
    from click import formatting

    if formatting.FORCED_WIDTH is not None:
        return None
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns or 80, max_width or 80) - 2, 50)


_short_lived = [False]  # set once the command line names a short-lived command


def run_program(main: click.Group) -> NoReturn:
    """Run hdrfix as the program, and end a short-lived command without tearing the
    interpreter down.

    Python frees every object one by one at exit: after planning a repository that is the
    syntax trees and YAML nodes of every file read, 15 ms of a 0.2 s ``--check`` here, spent
    on memory the process is about to give back whole. So once such a command has returned
    and its output is flushed, the process ends with ``os._exit``, where nothing else is
    owed (:func:`_nothing_owed`: a plugin's ``atexit`` handler or thread keeps the normal
    exit) and the exit code is a number. Files it wrote were closed by then (each write is a
    ``with`` block, synced before the rename)."""
    try:
        main(prog_name="hdrfix")
        code: object = 0
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code
    if _short_lived[0] and isinstance(code, int) and _nothing_owed():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # a closed pipe: let the normal exit report it
        else:
            os._exit(code)
    sys.exit(code)  # type: ignore[arg-type]


def _nothing_owed() -> bool:
    """No ``atexit`` handler, no thread a normal exit would wait for (a plugin's), and both
    standard streams there to flush (a closed one is None: the normal exit knows what to do)."""
    import atexit

    if getattr(atexit, "_ncallbacks", lambda: 1)() or sys.stdout is None or sys.stderr is None:
        return False
    threading = sys.modules.get("threading")
    return threading is None or (
        threading.active_count() == 1 and not getattr(threading, "_threading_atexits", [None])
    )


def _is_program() -> bool:
    """Whether this process runs hdrfix itself (the script, or ``python -m hdrfix``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == "hdrfix.__main__" or (
        os.path.basename(sys.argv[0]) == "hdrfix"
    )
