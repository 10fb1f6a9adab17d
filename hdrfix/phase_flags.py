"""What the installed phases bring to the command line: their declared options as flags of
``apply`` and ``status``, their own commands, and their names for shell completion.

Every option has the namespaced flag ``--phase-name``, which no other phase can ever change;
the short ``--name`` is an alias of it while that name is unique among every installed phase and
the common options. Installing a phase that declares ``ceiling`` too removes only the alias
``--ceiling``: ``--bound-ceiling`` keeps working, and so a third-party phase can never take over
``--config`` or another phase's flag. ``--set PHASE.KEY=VALUE`` reaches the
same options by name; every value is converted and checked by its phase's ``Option``.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from hdrfix.core.plugin import Option, Phase, discover
from hdrfix.lang.errors import HdrfixError

PREFIX = "phaseopt__"  # the click parameter names of phase flags; never a common option's
COMMANDS = ("apply", "status")  # the commands that take phase flags


@dataclass(frozen=True)
class Flag:
    phase: str
    option: Option
    flag: str
    alias: bool = False  # the short ``--name``, there only while no other phase declares it

    @property
    def dest(self) -> str:
        tail = "__alias" if self.alias else ""
        return f"{PREFIX}{_ident(self.phase)}__{self.option.name}{tail}"


def flags(phases: Mapping[str, type[Phase]], taken: set[str]) -> list[Flag]:
    """The flags for ``phases``; ``taken`` holds the common options' names (``config``...)."""
    declared = [(name, opt) for name in sorted(phases) for opt in phases[name].options]
    count = Counter(_dashed(opt.name) for _, opt in declared)
    out = []
    for name, opt in declared:
        short = _dashed(opt.name)
        if count[short] == 1 and short not in taken:
            out.append(Flag(name, opt, f"--{short}", alias=True))
        out.append(Flag(name, opt, f"--{_dashed(name)}-{short}"))
    return out


_METAVARS: dict[Any, str] = {float: "float", int: "integer", str: "text"}  # click's names


class OptionType(click.ParamType):
    """A phase flag's click type: the text goes to the phase's :class:`Option` as given, so a
    value is converted and checked in one place, whether it came from the flag, ``--set``,
    ``[tool.hdrfix]`` or ``.hdrfix.toml``, and the error names the flag."""

    def __init__(self, flag: Flag) -> None:
        self.flag = flag
        self.name = _METAVARS.get(flag.option.type, "value")

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        choices = self.flag.option.choices
        return f"[{'|'.join(choices)}]" if choices else self.name.upper()

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[click.shell_completion.CompletionItem]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(c) for c in self.flag.option.choices if c.startswith(incomplete)]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return self.flag.option.convert(value, self.flag.flag)


def params(all_flags: list[Flag]) -> list[click.Option]:
    return [
        click.Option(
            [f.flag, f.dest],
            type=OptionType(f),
            help=f"{f.phase}: {f.option.help}."
            if f.alias or not _aliased(f, all_flags)
            else f"the same as --{_dashed(f.option.name)}.",
        )
        for f in all_flags
    ]


def phase_options(
    all_flags: list[Flag], kwargs: dict[str, Any], sets: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """Per phase, the values given for its options (flags first, then ``--set``)."""
    values: dict[str, dict[str, Any]] = {}
    given: dict[tuple[str, str], str] = {}
    for f in all_flags:
        value = kwargs.pop(f.dest, None)
        if value is None:
            continue
        other = given.setdefault((f.phase, f.option.name), f.flag)
        if other != f.flag:
            raise HdrfixError(f"{other} and {f.flag} are the same option: give one of them")
        values.setdefault(f.phase, {})[f.option.name] = value  # converted by its OptionType
    by_key = {(f.phase, f.option.name): f for f in all_flags if not f.alias}
    for item in sets:
        target, sep, text = item.partition("=")
        phase, dot, key = target.partition(".")
        if not (sep and dot):
            raise HdrfixError(
                f"--set takes PHASE.KEY=VALUE, got {item!r}",
                hint="e.g. --set phase1.clamp=6; `hdrfix apply --help` lists each phase's options",
            )
        found = by_key.get((phase, key.replace("-", "_")))
        if found is None:
            known = ", ".join(f"{f.phase}.{f.option.name}" for f in by_key.values()) or "none"
            raise HdrfixError(f"--set {target}: no such phase option (known: {known})")
        values.setdefault(phase, {})[found.option.name] = found.option.convert(
            text, f"--set {item}"
        )
    return values


def epilog(phases: Mapping[str, type[Phase]], all_flags: list[Flag]) -> str:
    """The installed phases and their flags, for the end of ``apply --help``."""
    lines = ["\b", "Installed phases (their options above):"]
    for name in sorted(phases):
        own = [
            f.flag for f in all_flags if f.phase == name and (f.alias or not _aliased(f, all_flags))
        ]
        lines.append(f"  {name:<8} {', '.join(own) or '-'}")
    return "\n".join(lines)


def _aliased(f: Flag, all_flags: list[Flag]) -> bool:
    return any(a.alias and (a.phase, a.option) == (f.phase, f.option) for a in all_flags)


def _dashed(name: str) -> str:
    return name.replace("_", "-")


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def installed(ctx: click.Context) -> dict[str, type[Phase]]:
    """The installed phases (``--plugins`` ones included), discovered once per command line:
    listing the commands, building a command's flags and running it all read them."""
    root = ctx.find_root()
    dirs: tuple[Path, ...] = tuple(root.params.get("plugin_dirs") or ())
    found: dict[tuple[Path, ...], dict[str, type[Phase]]] = root.meta.setdefault(
        "hdrfix.phases", {}
    )
    if dirs not in found:
        found[dirs] = discover(dirs)
    return found[dirs]


def with_flags(command: click.Command, phases: Mapping[str, type[Phase]]) -> click.Command:
    """``command`` (apply or status) with a flag for each of ``phases``' options; its
    callback gets their values as ``phase_options``."""
    taken = {p.name.replace("_", "-") for p in command.params if p.name} | {"set", "plugins"}
    all_flags = flags(phases, taken)
    built = copy.copy(command)
    built.params = [*command.params, *params(all_flags)]
    if command.name == "apply":
        built.epilog = epilog(phases, all_flags)
    built.callback = _taking(command.callback, all_flags)
    return built


def _taking(callback: Callable[..., Any] | None, all_flags: list[Flag]) -> Callable[..., Any]:
    assert callback is not None

    def run(*args: Any, **kwargs: Any) -> Any:
        kwargs["phase_options"] = phase_options(all_flags, kwargs, kwargs.pop("extra"))
        return callback(*args, **kwargs)

    return run


def commands(ctx: click.Context) -> dict[str, click.Command]:
    """The commands phases bring (phase2's migrate-checkpoint)."""
    phases = installed(ctx)
    return {c.name: c for p in phases.values() for c in p.commands if c.name}


def complete(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Shell completion of phase names (``hdrfix apply pha<TAB>``)."""
    from click.shell_completion import CompletionItem

    phases = installed(ctx)
    return [
        CompletionItem(name, help=phases[name].summary)
        for name in sorted(phases)
        if name.startswith(incomplete)
    ]
