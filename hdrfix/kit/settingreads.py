"""A trainer's ``__init__`` reading its settings, read with ``ast``: where it reads the section
hdrfix edits, and whether it already reads a setting a phase adds.

The questions ``status`` and ``--check`` ask of an applied repository: answered here without
libcst (importing it is half of such a run). Adding a missing read is libcst's work
(:mod:`hdrfix.kit.trainersetting`, which this falls back to): the answers here follow its
rules exactly, so that the two never disagree on whether a read is there:

- a statement counts where libcst sees a statement line: in the function's blocks and those of
  its if/loop/with/try statements, not in nested functions or classes, nor in ``match`` or
  ``try/except*``, nor after the ``:`` of a compound statement on its line;
- ``self.<key> = ...`` (one target) or ``self.<key>: T = ...`` assigns a setting;
- the section is the mapping of a ``<mapping>.get('log_delta_abs_max', ...)`` call, its first
  argument (in source order) the key.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hdrfix.core.repo import Repo
    from hdrfix.lang.pyfile import PyFile

#: The key by which a trainer's ``__init__`` shows where it reads the section hdrfix edits.
MARKER = "log_delta_abs_max"

_Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Read:
    """``self.<key> = <cast>(<mapping>.get('<key>', <default>))``."""

    key: str
    cast: str  # "float", "str", "int", "bool"
    default: float | str


def statements(block: list[ast.stmt], text: str, starts: Sequence[int]) -> Iterator[ast.stmt]:
    """Every statement of a block and of its nested blocks, each before those inside it, as
    libcst's ``statements`` walks them (see the module's docstring). ``text`` and ``starts``
    (its line offsets) tell a statement line from the rest of a compound's header line."""
    leaders: dict[int, ast.stmt] = {}
    for stmt in block:
        leader = leaders.setdefault(stmt.lineno, stmt)
        if not _begins_line(leader, text, starts):
            continue  # ``if c: x = 1``: small statements after the compound's colon
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if type(stmt).__name__ == "TryStar":  # not a statement libcst's walk enters
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from statements(getattr(stmt, name, []), text, starts)
        for handler in getattr(stmt, "handlers", []):
            yield from statements(handler.body, text, starts)


def _begins_line(stmt: ast.stmt, text: str, starts: Sequence[int]) -> bool:
    start = starts[stmt.lineno - 1]
    before = text[start : start + stmt.col_offset]  # ast counts UTF-8 bytes: exact for spaces
    return not before.strip(" \t\f")


def settings_mapping(pyfile: PyFile, init: _Function) -> ast.expr | None:
    """What ``init`` reads the section holding :data:`MARKER` from (``norm_cfg`` in
    ``self.x = float(norm_cfg.get('log_delta_abs_max', 0.0))``); None if it does not."""
    for _, value in _self_assigns(pyfile, init):
        for call in ast.walk(value):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "get"
                and _first_argument_is(call, MARKER, pyfile.source.text)
            ):
                return call.func.value
    return None


def assigned_line(pyfile: PyFile, init: _Function, attr: str) -> int | None:
    """The line of the statement of ``init`` that assigns ``self.<attr>``, if any."""
    return next((stmt.lineno for stmt, _ in _self_assigns(pyfile, init, attr)), None)


def _self_assigns(
    pyfile: PyFile, init: _Function, attr: str | None = None
) -> Iterator[tuple[ast.stmt, ast.expr]]:
    for stmt in statements(init.body, pyfile.source.text, pyfile.starts):
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
            and attr in (None, target.attr)
        ):
            yield stmt, value


def _first_argument_is(call: ast.Call, key: str, text: str) -> bool:
    arguments = [*call.args, *(k.value for k in call.keywords)]
    if not arguments:
        return False
    first = min(arguments, key=lambda a: (a.lineno, a.col_offset))
    return isinstance(first, ast.Constant) and first.value == key and _one_string(first, text)


def _one_string(node: ast.expr, text: str) -> bool:
    """One string literal, not several written side by side (which libcst does not read as
    a key)."""
    import io
    import tokenize

    segment = ast.get_source_segment(text, node) or ""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(segment).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    return sum(t.type == tokenize.STRING for t in tokens) == 1


def all_statements(block: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement as libcst's ``assignments`` walks them: :func:`statements`, and the
    small statements after a compound's ``:`` too."""
    for stmt in block:
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if type(stmt).__name__ == "TryStar":
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from all_statements(getattr(stmt, name, []))
        for handler in getattr(stmt, "handlers", []):
            yield from all_statements(handler.body)


def kept_values(
    repo: Repo, rel: str, values: Mapping[str, Any], keep: Mapping[str, Callable[[Any], bool]]
) -> dict[str, Any]:
    """``values`` for one config, except that a key of ``keep`` whose current value passes its
    test keeps that value.

    A setting the user chose (``--loss moment`` once) must not turn the phase back to pending
    when it is checked later without that option; only an option given now overrides it.
    """
    from hdrfix.kit.configedit import section_value

    result = dict(values)
    if not keep:
        return result
    for key, valid in keep.items():
        current = section_value(repo, rel, key)  # one value for every target document
        if current is not None and valid(current):
            result[key] = current
    return result
