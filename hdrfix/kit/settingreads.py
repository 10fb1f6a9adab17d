"""A trainer's ``__init__`` reading its settings, read with ``ast``: where it reads the section
hdrfix edits, and whether it already reads a setting a phase adds.

The questions ``status`` and ``--check`` ask of an applied repository: answered here without
libcst (importing it is half of such a run). Adding a missing read is libcst's work
(:mod:`hdrfix.kit.trainersetting`, reached through :mod:`hdrfix.kit.settingplan`): the
answers here follow its rules exactly, so that the two never disagree on whether a read is
there:

- a statement counts where libcst sees a statement line: in the function's blocks and those of
  its if/loop/with/try statements (a ``try``'s handlers before its ``else``), not in nested
  functions or classes, nor in ``match`` or ``try/except*``, nor after the ``:`` of a compound
  statement on its line; a statement after ``;`` goes by the line of the first on its line.
  Tokens tell these apart: a backslash continuation or a statement spanning lines hides them
  from line numbers (an adversarial review found both);
- ``self.<key> = ...`` (one target) or ``self.<key>: T = ...`` assigns a setting;
- the section is the mapping of a ``<mapping>.get('log_delta_abs_max', ...)`` call, its first
  argument (in source order) the key.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping
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


@dataclass(frozen=True)
class Placed:
    """A statement of a function as libcst holds it: ``line`` is the line libcst names it by
    (a statement after ``;`` goes by the first of its line); ``suite`` says it follows a
    compound statement's ``:`` on that line (``if c: x = 1``), where libcst has no statement
    line."""

    stmt: ast.stmt
    line: int
    suite: bool


def placed_statements(pyfile: PyFile, fn: _Function) -> list[Placed]:
    """Every statement of ``fn``'s blocks and of their if/loop/with/try blocks, each before
    those inside it, in libcst's order (a ``try``'s handlers before its ``else``), not those of
    nested functions or classes, ``match`` or ``try/except*``. Made once per function node."""
    cached = pyfile.analyses.get(("placed", f"{fn.lineno}:{fn.col_offset}"))
    if cached is not None and cached[0] is fn:
        return cached[1]  # type: ignore[return-value]
    openings = _openings(pyfile, fn)
    found: list[Placed] = []

    def walk(block: list[ast.stmt]) -> None:
        line, suite = 0, False
        for stmt in block:
            opening = openings.get((stmt.lineno, stmt.col_offset), "line")
            if opening == "line":
                line, suite = stmt.lineno, False
            elif opening == "colon":
                suite = True
            found.append(Placed(stmt, stmt.lineno if suite else line or stmt.lineno, suite))
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if type(stmt).__name__ == "TryStar":  # not a statement libcst's walk enters
                continue
            walk(getattr(stmt, "body", []))
            for handler in getattr(stmt, "handlers", []):
                walk(handler.body)
            walk(getattr(stmt, "orelse", []))
            walk(getattr(stmt, "finalbody", []))

    walk(fn.body)
    pyfile.analyses[("placed", f"{fn.lineno}:{fn.col_offset}")] = (fn, found)
    return found


def _openings(pyfile: PyFile, fn: _Function) -> dict[tuple[int, int], str]:
    """How each token of ``fn`` is reached, keyed by line and UTF-8 column (``ast``'s):
    after ``;``, after ``:``, or at the start of a logical line. Read from tokens, since a
    backslash continuation or a statement spanning lines hides that from line numbers."""
    import io
    import tokenize

    first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
    starts, text = pyfile.starts, pyfile.source.text
    last = fn.end_lineno or fn.lineno
    segment = text[starts[first - 1] : starts[last] if last < len(starts) else len(text)]
    skipped = (tokenize.NL, tokenize.COMMENT, tokenize.ENCODING)
    openings: dict[tuple[int, int], str] = {}
    previous = ""
    try:
        # universal newlines: a lone CR ends a line for ast and line_starts too
        for token in tokenize.generate_tokens(io.StringIO(segment, newline=None).readline):
            row, column = token.start
            key = (row + first - 1, len(token.line[:column].encode("utf-8")))
            openings[key] = {";": "semicolon", ":": "colon"}.get(previous, "line")
            if token.type not in skipped:
                previous = token.string if token.type == tokenize.OP else ""
    except (tokenize.TokenError, SyntaxError):
        pass  # ast read the file: this does not happen; every statement then opens a line
    return openings


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
