"""The Phase interface and how phases are found.

A phase is a class with ``name``, ``summary``, ``requires`` and ``plan(repo, options)``. ``plan``
only reads: it looks at the repository (as edited in memory by the phases before it in this run)
and returns a :class:`PhasePlan` saying, per target, what is already done and what it would
change. The engine renders, checks, writes and records; a phase never touches the disk.

The built-in phases are the modules of ``hdrfix_plugins`` (found by listing the package, so a
phase copied there needs no reinstall); third-party ones register in the entry-point group
``hdrfix.plugins``, or live as modules in a folder passed with ``--plugins DIR``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from hdrfix.core.entrypoints import entry_points
from hdrfix.lang.errors import HdrfixError

if TYPE_CHECKING:
    import libcst as cst

    from hdrfix.core.repo import Repo
    from hdrfix.lang.pyfile import FunctionRef

GROUP = "hdrfix.plugins"
BUILT_IN = "hdrfix_plugins"  # the package of the phases that ship with hdrfix
State = Literal["applied", "partial", "pending", "not applicable", "error"]


@dataclass(frozen=True)
class Item:
    """One thing a phase checks: a config value, a clamp at one site, a parameter."""

    path: str
    line: int | None
    what: str
    done: bool

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass
class PhasePlan:
    phase: str
    items: list[Item] = field(default_factory=list)
    text_edits: dict[str, str] = field(default_factory=dict)
    # a function's new node, or its new text (whole lines: hdrfix.lang.splice)
    function_edits: list[tuple[str, FunctionRef, cst.FunctionDef | str]] = field(
        default_factory=list
    )
    notes: list[str] = field(default_factory=list)
    not_patched: list[Item] = field(default_factory=list)
    # Shapes that look like a target but that the phase does not edit: never skipped silently.
    unhandled: list[Item] = field(default_factory=list)
    error: str | None = None  # status only: why the phase could not be read
    # Why applying the phase now would be wrong (status shows it; apply exits 2 with it).
    refusal: HdrfixError | None = None

    @property
    def state(self) -> State:
        if self.error:
            return "error"
        done = any(i.done for i in self.items)
        todo = any(not i.done for i in self.items)
        if (done and todo) or (self.unhandled and not todo):
            return "partial"
        if todo:
            return "pending"
        return "applied" if done else "not applicable"

    @property
    def missing(self) -> list[Item]:
        return [i for i in self.items if not i.done]

    def done(self, path: str, line: int | None, what: str) -> None:
        self.items.append(Item(path, line, what, True))

    def todo(self, path: str, line: int | None, what: str) -> None:
        self.items.append(Item(path, line, what, False))


@dataclass(frozen=True)
class Option:
    """A setting a phase takes. The CLI makes it a flag of ``apply`` and ``status``: ``--name``
    while no other phase or common option has that name, else ``--phase-name``.

    ``type`` converts the text given (``float``, ``int``, ``str``); ``choices`` limits it;
    ``above`` / ``at_least`` bound a number from below. The phase reads the converted value as
    ``options[name]``, or None when not given.

    Every value is checked here, wherever it came from (a flag, ``--set``, ``[tool.hdrfix]``
    or ``.hdrfix.toml``, all untrusted), so a phase never sees one it did not declare: a
    number must be finite, and a float must survive becoming a float32, because the numbers
    of hdrfix's phases end up in float32 tensors (a clamp bound, a ceiling, a parameter's
    start, a loss weight), where 1e308 is inf and 1e-50 is 0.
    """

    name: str
    help: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    above: float | None = None  # a number must be greater than this
    at_least: float | None = None  # a number must be at least this
    hint: str | None = None  # what to do about a refused value, where "fix it" is not enough

    def convert(
        self, raw: Any, source: str, path: str | None = None, line: int | None = None
    ) -> Any:
        """``raw`` (text, or a TOML value) as the phase reads it, checked by :meth:`checked`."""
        expected = " | ".join(self.choices) or _KINDS.get(self.type, "a value")
        try:
            # a TOML ``true`` is no number (float(True) is 1.0), a table or array no value
            if isinstance(raw, (bool, dict, list)) and self.type is not bool:
                raise TypeError
            value = self.type(raw)
        except (TypeError, ValueError):
            raise HdrfixError(
                f"{source} must be {expected}, got {raw!r}", path, line, self.hint or "fix it"
            ) from None
        return self.checked(value, source, path, line)

    def checked(
        self, value: Any, source: str, path: str | None = None, line: int | None = None
    ) -> Any:
        """``value`` (already of ``type``) if it is in range; else a one-line HdrfixError naming
        ``source`` (``--clamp``, ``--set phase1.clamp=0``, ``phase1.clamp`` with ``path``)."""
        from hdrfix.halffloat import in_float32

        if self.choices and value not in self.choices:
            raise HdrfixError(
                f"{source} must be {' | '.join(self.choices)}, got {value!r}",
                path,
                line,
                self.hint or "fix it",
            )
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return value
        fits = isinstance(value, int) or in_float32(value)  # an int is exact and finite
        low_ok = (self.above is None or value > self.above) and (
            self.at_least is None or value >= self.at_least
        )
        if not (fits and low_ok):
            raise HdrfixError(
                f"{source} must be {self.requirement()}, got {value!r}",
                path,
                line,
                self.hint or "fix the value",
            )
        return value

    def requirement(self) -> str:
        """What :meth:`checked` accepts, in words."""
        bounds = [f"above {self.above:g}"] if self.above is not None else []
        bounds += [f"at least {self.at_least:g}"] if self.at_least is not None else []
        what = "a finite number" + "".join(f" {b}" for b in bounds)
        return what + (
            " in float32 range (up to 3.4e38, not rounding to 0)" if self.type is float else ""
        )


_KINDS: dict[Any, str] = {float: "a number", int: "a whole number", str: "text"}


class Phase:
    """Base class for phases. A subclass is the phase's declaration: it sets the class
    attributes, and either names its planning code in ``planner`` or implements ``plan``.

    ``planner`` (``"package.module:function"``, called as ``function(phase, repo, options)``)
    keeps the declaration light: ``--help``, ``list`` and shell completion read every installed
    phase's declaration, and only a command that plans imports the planner (and with it libcst,
    ruamel and the phase kit)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = ()
    # click commands the phase adds to hdrfix (phase2: migrate-checkpoint)
    commands: ClassVar[tuple[Any, ...]] = ()
    # For validate: the |delta_log| the phase clamps at by default (validate reports the share
    # of residuals there), and the parameters it adds to the network (allowed beyond the base's)
    residual_bound: ClassVar[float | None] = None
    network_parameters: ClassVar[tuple[str, ...]] = ()
    # The kinds of file (by suffix) the phase writes: revert and recovery refuse a record that
    # names another kind for it, since the journal and the intent are untrusted input.
    writes: ClassVar[tuple[str, ...]] = (".py", ".yaml", ".yml")

    planner: ClassVar[str | None] = None

    def plan(self, repo: Repo, options: Mapping[str, Any]) -> PhasePlan:
        if self.planner is None:
            raise NotImplementedError(f"phase {self.name!r} has neither a planner nor a plan()")
        module, _, attr = self.planner.partition(":")
        try:
            function: Any = importlib.import_module(module)
            for part in attr.split("."):
                function = getattr(function, part)
        except (ImportError, AttributeError) as exc:
            raise HdrfixError(
                f"phase {self.name!r}: its planner {self.planner!r} cannot be loaded ({exc})",
                hint="reinstall the plugin, or report it to its author",
            ) from None
        return function(self, repo, options)  # type: ignore[no-any-return]


def discover(plugin_dirs: tuple[Path, ...] = ()) -> dict[str, type[Phase]]:
    phases: dict[str, type[Phase]] = {}
    for cls in _built_in():
        _register(phases, cls, cls.__module__)
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken third-party plugin must not break the others
            print(f"hdrfix: warning: plugin {ep.name!r} failed to load: {exc}", file=sys.stderr)
            continue
        _register(phases, cls, f"entry point {ep.value}")
    for folder in plugin_dirs:
        for path in sorted(Path(folder).glob("*.py")):
            for cls in _phases_in_file(path):
                _register(phases, cls, str(path))
    return phases


def _built_in() -> list[type[Phase]]:
    """The phases in the modules of the built-in package, found by listing it: a phase copied
    into ``hdrfix_plugins/`` is found at once, without an entry point or a reinstall."""
    try:
        package = importlib.import_module(BUILT_IN)
    except ImportError:
        return []
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        name = f"{BUILT_IN}.{info.name}"
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # as for a broken entry point: the other phases still load
            print(f"hdrfix: warning: phase module {name} failed to load: {exc}", file=sys.stderr)
            continue
        found += [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, Phase)
            and obj is not Phase
            and obj.__module__.startswith(name)
            and getattr(obj, "name", None)
        ]
    return found


def _register(phases: dict[str, type[Phase]], cls: Any, origin: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Phase) and getattr(cls, "name", None)):
        raise HdrfixError(
            "does not provide a Phase subclass with a name", origin, hint="see docs/plugins.md"
        )
    if cls.name in phases and phases[cls.name] is not cls:
        raise HdrfixError(
            f"phase {cls.name!r} is defined twice", origin, hint="rename one of the phases"
        )
    phases[cls.name] = cls


def _phases_in_file(path: Path) -> list[type[Phase]]:
    module = _imported_from(path)
    if module is None:  # a file not imported yet, under a name of its own
        module_name = f"hdrfix_local_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise HdrfixError("cannot be imported as a plugin", str(path))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except SyntaxError as exc:
            raise HdrfixError(
                f"plugin has a syntax error: {exc.msg}", str(path), exc.lineno
            ) from None
    module_name = module.__name__
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Phase)
        and obj is not Phase
        and obj.__module__ == module_name
        and getattr(obj, "name", None)
    ]


def _imported_from(path: Path) -> ModuleType | None:
    """The module already imported from ``path`` (``--plugins hdrfix_plugins/`` names the
    installed built-ins again): the same classes, not a second copy of each phase."""
    real = os.path.realpath(path)
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.realpath(file) == real:
            return module
    return None


def kinds(phases: Mapping[str, type[Phase]], names: list[str]) -> tuple[str, ...]:
    """The suffixes the named phases write; every installed phase's when ``names`` is empty.
    A name not installed contributes nothing: hdrfix cannot tell what it wrote."""
    chosen = [phases[n] for n in names if n in phases] if names else list(phases.values())
    return tuple(sorted({suffix for phase in chosen for suffix in phase.writes}))


def unknown_phase(name: str, phases: Iterable[str]) -> HdrfixError:
    """The one line every command gives for a phase name that is not installed, with the
    closest installed name when one is close (a typo)."""
    import difflib

    known = sorted(phases)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? see `hdrfix list`" if close else "see `hdrfix list`"
    return HdrfixError(f"unknown phase {name!r} (known: {', '.join(known) or 'none'})", hint=hint)


def resolve(requested: list[str], phases: Mapping[str, type[Phase]], with_deps: bool) -> list[str]:
    """The requested phases in dependency order; with ``with_deps`` their requirements too."""
    for name in requested:
        if name not in phases:
            raise unknown_phase(name, phases)
    wanted = set(requested)
    if with_deps:
        stack = list(requested)
        while stack:
            for dep in phases[stack.pop()].requires:
                if dep not in phases:
                    raise HdrfixError(f"a phase requires unknown phase {dep!r}")
                if dep not in wanted:
                    wanted.add(dep)
                    stack.append(dep)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise HdrfixError(f"phases require each other in a cycle through {name!r}")
        visiting.add(name)
        for dep in phases[name].requires:
            if dep in wanted:
                visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in sorted(wanted, key=lambda n: (requested.index(n) if n in requested else -1, n)):
        visit(name)
    return order
