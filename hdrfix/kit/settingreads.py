"""A trainer's ``__init__`` reading its settings, read with ``ast``: where it reads the section
hdrfix edits, and whether it already reads a setting a phase adds.

The questions ``status`` and ``--check`` ask of an applied repository: answered here without
libcst (importing it is half of such a run). Adding a missing read is libcst's work
(:mod:`hdrfix.kit.trainersetting`, reached through :mod:`hdrfix.kit.settingplan`): the
answers here follow its rules exactly, so that the two never disagree on whether a read is
there:

- a statement counts where libcst sees a statement line, walked in libcst's order
  (:mod:`hdrfix.lang.stmtlines`, which an adversarial review made read tokens);
- ``self.<key> = ...`` (one target) or ``self.<key>: T = ...`` assigns a setting;
- the section is the mapping of a ``<mapping>.get('log_delta_abs_max', ...)`` call, its first
  argument (in source order) the key.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hdrfix.lang.stmtlines import Placed, placed_statements

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


def settings_mapping(pyfile: PyFile, init: _Function) -> ast.expr | None:
    """What ``init`` reads the section holding :data:`MARKER` from (``norm_cfg`` in
    ``self.x = float(norm_cfg.get('log_delta_abs_max', 0.0))``); None if it does not."""
    for _, value in _self_assigns(pyfile, init):
        for call in ast.walk(value):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "get"
                and _first_argument_is(call, MARKER, pyfile)
            ):
                return call.func.value
    return None


def assigned_line(pyfile: PyFile, init: _Function, attr: str) -> int | None:
    """The line of the statement of ``init`` that assigns ``self.<attr>``, if any."""
    return next((placed.line for placed, _ in _self_assigns(pyfile, init, attr)), None)


def _self_assigns(
    pyfile: PyFile, init: _Function, attr: str | None = None
) -> Iterator[tuple[Placed, ast.expr]]:
    for placed in placed_statements(pyfile, init):
        if placed.suite:
            continue
        stmt = placed.stmt
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
            yield placed, value


def _first_argument_is(call: ast.Call, key: str, pyfile: PyFile) -> bool:
    arguments = [*call.args, *(k.value for k in call.keywords)]
    if not arguments:
        return False
    first = min(arguments, key=lambda a: (a.lineno, a.col_offset))
    return isinstance(first, ast.Constant) and first.value == key and _one_string(first, pyfile)


def _one_string(node: ast.expr, pyfile: PyFile) -> bool:
    """One string literal, not several written side by side (which libcst does not read as
    a key)."""
    import io
    import tokenize

    from hdrfix.lang.splice import source_span

    # (``ast.get_source_segment`` splits the whole file into lines on every call)
    start, end = source_span(pyfile.source.text, pyfile.starts, node)
    segment = pyfile.source.text[start:end]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(segment).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    return sum(t.type == tokenize.STRING for t in tokens) == 1


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
