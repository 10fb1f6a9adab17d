"""A function's blocks as libcst's helpers in :mod:`hdrfix.lang.cst.match` walk them, read from
``ast``: a planner ported to ``ast`` gives libcst's answer only if it walks the same statements
in the same blocks.

The correspondence holds where every statement opens its own line (:func:`opens_lines`):
there, one ``ast`` statement is one libcst statement line or compound statement. Two shapes
differ in structure and are mapped here: ``elif`` (an ``If`` in the ``orelse`` of an ``If``,
at the ``if``'s own column, which libcst walks as the outer ``if``'s next block, not as a
statement) and the blocks libcst's walk does not enter (``match``, ``try/except*``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import PyFile

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)


@dataclass(frozen=True)
class Place:
    """A statement and the block (list of statements) that holds it, at ``index``."""

    block: list[ast.stmt]
    index: int
    stmt: ast.stmt


def opens_lines(pyfile: PyFile, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether every statement libcst's walk reaches in ``fn`` begins its line: none after
    ``;`` or after a compound statement's ``:`` (two statements never start on one line
    otherwise)."""
    from hdrfix.lang.stmtlines import placed_statements

    placed = placed_statements(pyfile, fn)
    lines = [p.stmt.lineno for p in placed]
    return not any(p.suite for p in placed) and len(set(lines)) == len(lines)


def _try_star(node: ast.AST) -> bool:
    return type(node).__name__ == "TryStar"


def sub_suites(stmt: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The blocks directly inside a compound statement, as libcst's ``sub_suites``."""
    if isinstance(stmt, ast.If):
        yield stmt.body
        orelse = stmt.orelse
        if len(orelse) == 1 and isinstance(orelse[0], ast.If) and _is_elif(stmt, orelse[0]):
            yield from sub_suites(orelse[0])
        elif orelse:
            yield orelse
    elif isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
        yield stmt.body
        if stmt.orelse:
            yield stmt.orelse
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        yield stmt.body
    elif isinstance(stmt, ast.Try):
        yield stmt.body
        for handler in stmt.handlers:
            yield handler.body
        if stmt.orelse:
            yield stmt.orelse
        if stmt.finalbody:
            yield stmt.finalbody


def _is_elif(outer: ast.If, inner: ast.If) -> bool:
    # ``else:`` and a nested ``if`` indent the ``if`` deeper; ``elif`` stands at the column
    return inner.col_offset == outer.col_offset and inner.lineno > outer.lineno


def small_statements(
    block: list[ast.stmt], chain: tuple[Place, ...] = ()
) -> Iterator[tuple[ast.stmt, tuple[Place, ...]]]:
    """Every simple statement of a block and of its if/loop/with/try blocks, in source order,
    with the chain of places leading to it (libcst's ``small_statements``)."""
    for index, stmt in enumerate(block):
        place = chain + (Place(block, index, stmt),)
        if not isinstance(stmt, (*_COMPOUND, *_DEFS, ast.Match)) and not _try_star(stmt):
            yield stmt, place
        elif isinstance(stmt, _COMPOUND):
            for suite in sub_suites(stmt):
                yield from small_statements(suite, place)


def smalls_of(stmt: ast.stmt) -> list[ast.stmt]:
    """The simple statements of one statement: itself, or those of its blocks."""
    if isinstance(stmt, _COMPOUND):
        return [s for suite in sub_suites(stmt) for s, _ in small_statements(suite)]
    if isinstance(stmt, (*_DEFS, ast.Match)) or _try_star(stmt):
        return []
    return [stmt]


def divergence(producer: Sequence[Any], ret: Sequence[Any]) -> int | None:
    """The depth at which a producer's statement precedes a return in a common block, for
    chains of places of either tree (libcst's or ``ast``'s: both have ``stmt``, ``block`` and
    ``index``). ``None`` when the producer cannot reach the return: it sits in a sibling
    branch, or after it."""
    for depth, (p, r) in enumerate(zip(producer, ret)):
        if p.stmt is r.stmt:
            continue
        if p.block is r.block and p.index < r.index:
            return depth
        return None
    return None
