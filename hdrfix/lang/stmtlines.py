"""A function's statements in the order libcst walks them and on the lines libcst names them
by, read with ``ast`` and the function's tokens, so that a question answered here gets libcst's
answer without importing libcst (its import is half of a ``--check``).

libcst holds a line of small statements (``a = 1; b = 2``) as one statement line, named by its
first line, and the small statements after a compound's ``:`` (``if c: x = 1``) as no statement
line at all; its walk enters if/loop/with/try blocks (a ``try``'s handlers before its
``else``) but not nested functions, classes, ``match`` or ``try/except*``. Line numbers alone
cannot tell these apart (a backslash continuation, a statement spanning lines): the token before
each statement does.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import PyFile

_Function = ast.FunctionDef | ast.AsyncFunctionDef


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
