"""phase2's network edits planned on ``ast``, so that a run whose layouts are plain never
imports libcst (its import is a quarter of a dry-run on a 3,000-line trainer).

Each planner here is :mod:`~hdrfix_plugins.phase2.netinit`'s or
:mod:`~hdrfix_plugins.phase2.network`'s, walking the blocks libcst's helpers walk
(:mod:`hdrfix.lang.astblocks`), and answers only where that walk is certain to agree: every
statement opens its line, nothing a name test reads differently on the two trees (nested
functions, lambdas, imports, ``global``, exception names, ``match``), the residual bounded by
name after its producer. Anything else returns None and goes to the libcst planner, which says
why it refuses where it does; a test holds the two to the same text on every shape it knows.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from hdrfix.lang.astblocks import Place, divergence, opens_lines, small_statements, smalls_of
from hdrfix.lang.astmatch import call_name
from hdrfix.lang.inserts import Inserts
from hdrfix.lang.pyfile import FunctionRef, PyFile
from hdrfix_plugins.phase2.netread import (
    is_covered,
    loaded,
    returned_head,
    returns_nothing,
    track_scaled,
)
from hdrfix_plugins.phase2.scale import PARAM as SCALE_ATTR

# what loaded-name tests read differently on ``ast`` (no name node for a def, a parameter, an
# import's alias, ``global`` or ``except ... as e``)
_SCOPED = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.Import,
    ast.ImportFrom,
    ast.Global,
    ast.Nonlocal,
    ast.Match,
)


def init_inserts(
    pyfile: PyFile, ref: FunctionRef, torch: str, nn: str, value: float
) -> Inserts | None:
    """The scale parameter after the last statement of ``__init__`` before any that can
    return (as :func:`~hdrfix_plugins.phase2.netinit.add_scale_parameter`)."""
    fn = pyfile.node(ref)
    if SCALE_ATTR in pyfile.segment(ref) or not opens_lines(pyfile, fn):
        return None  # a mention libcst's test may read as the parameter; a dense layout
    stmts = fn.body
    first_return = next((i for i, s in enumerate(stmts) if _can_return(s)), len(stmts))
    base_init = next((i for i, s in enumerate(stmts) if _calls_base_init(s)), -1)
    if first_return == 0 or base_init >= first_return:
        return None  # refused: libcst's planner says where
    code = f"self.{SCALE_ATTR} = {nn}.Parameter({torch}.tensor([{float(value)!r}]))"
    return Inserts().insert_after(stmts[first_return - 1], code)


def _can_return(stmt: ast.stmt) -> bool:
    return any(isinstance(s, ast.Return) for s in smalls_of(stmt))


def _calls_base_init(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and call_name(stmt.value) == "__init__"


# -- forward -------------------------------------------------------------------------------------


class _Declined(Exception):
    """libcst's planner must answer: a wrap, a list of levels, or a refusal."""


@dataclass(frozen=True)
class _Return:
    index: int
    stmt: ast.Return
    chain: tuple[Place, ...]
    head: ast.expr


@dataclass(frozen=True)
class _NameBound:
    name: str
    anchor: ast.stmt
    after: int


def forward_inserts(
    pyfile: PyFile, ref: FunctionRef, torch: str, element: int | None
) -> Inserts | None:
    """The bounds :func:`~hdrfix_plugins.phase2.network.bound_forward` plans, where each is a
    new statement after the residual's producer; None where libcst's planner must answer."""
    fn = pyfile.node(ref)
    if not opens_lines(pyfile, fn) or any(
        isinstance(n, _SCOPED)
        or (isinstance(n, ast.ExceptHandler) and n.name is not None)
        or (isinstance(n, ast.AnnAssign) and n.value is None)
        for n in ast.walk(fn)
        if n is not fn
    ):
        return None
    try:
        bounds = _bounds(fn, element or 0)
    except _Declined:
        return None
    if not bounds:
        return None  # every return covered: libcst's planner says so (a rare path)
    edit = Inserts()
    for b in bounds:
        edit.insert_after(b.anchor, f"{b.name} = {torch}.tanh({b.name}) * self.{SCALE_ATTR}")
    return edit


def _bounds(fn: ast.FunctionDef | ast.AsyncFunctionDef, element: int) -> list[_NameBound]:
    smalls = list(small_statements(fn.body))
    returns = [
        _return(i, s, c, element)
        for i, (s, c) in enumerate(smalls)
        if isinstance(s, ast.Return) and not returns_nothing(s)
    ]
    if not returns:
        raise _Declined
    bounds: list[_NameBound] = []
    while True:
        open_ = _uncovered(smalls, returns, bounds)
        if not open_:
            return bounds
        candidates = [(_candidate(smalls, r), r) for r in open_]
        first, _ = min(candidates, key=lambda c: c[0].after)
        if any(b.anchor is first.anchor and b.name == first.name for b in bounds):
            raise _Declined
        bounds.append(first)


def _return(index: int, stmt: ast.Return, chain: tuple[Place, ...], element: int) -> _Return:
    head = returned_head(stmt, element)
    if head is None:
        raise _Declined  # a tuple without the callers' element: libcst's planner refuses it
    return _Return(index, stmt, chain, head)


def _name_of(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _assign_target(stmt: ast.stmt) -> str | None:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        return _name_of(stmt.targets[0])
    return None


def _uncovered(smalls, returns: list[_Return], bounds: list[_NameBound]) -> list[_Return]:
    """The returns whose residual has not gone through a bound (planned ones count)."""
    written = {b.after: {c.name for c in bounds if c.after == b.after} for b in bounds}
    heads = {r.index: r for r in returns}
    scaled: set[str] = set()
    found = []
    for index, (small, _) in enumerate(smalls):
        track_scaled(small, scaled)
        if index in heads and not is_covered(heads[index].head, scaled):
            found.append(heads[index])
        scaled |= written.get(index, set())
    return found


def _candidate(smalls, ret: _Return) -> _NameBound:
    name = _name_of(ret.head)
    if name is None:
        raise _Declined  # a call wrapped in place, a list of levels, or a refusal
    producers = [
        (s, c)
        for s, c in smalls[: ret.index]
        if _assign_target(s) == name and name not in loaded(s.value)
    ]
    for producer, chain in reversed(producers):
        depth = divergence(chain, ret.chain)
        if depth is None:
            continue
        if _builds_list(producer.value):
            raise _Declined
        anchor = _past_postprocessing(chain[depth], name, ret.chain[depth].index)
        holding = [i for i, (_, c) in enumerate(smalls) if any(p.stmt is anchor.stmt for p in c)]
        if not holding:
            raise _Declined
        return _NameBound(name, anchor.stmt, max(holding))
    raise _Declined


def _builds_list(value: ast.expr) -> bool:
    return isinstance(value, (ast.List, ast.ListComp)) or (
        isinstance(value, ast.Call) and _name_of(value.func) == "list"
    )


def _past_postprocessing(anchor: Place, name: str, limit: int) -> Place:
    """The last in-place post-processing of ``name`` after ``anchor``, before any other use
    of it or a return (libcst's ``network._past_postprocessing``, for a name, not a list)."""
    last = anchor
    for index in range(anchor.index + 1, limit):
        role = _role(anchor.block[index], name)
        if role == "stop":
            break
        if role == "reprocesses":
            last = Place(anchor.block, index, anchor.block[index])
    return last


def _role(stmt: ast.stmt, name: str) -> str:
    smalls = smalls_of(stmt)
    if any(isinstance(s, ast.Return) for s in smalls):
        return "stop"
    if smalls and all(_assigns(s, name) and name in loaded(s.value) for s in smalls):  # type: ignore[attr-defined]
        return "reprocesses"
    if name in loaded(stmt) or any(_assigns(s, name) for s in smalls):
        return "stop"
    return "other"


def _assigns(small: ast.stmt, name: str) -> bool:
    if isinstance(small, ast.Assign):
        return name in {_name_of(t) for t in small.targets}
    if isinstance(small, (ast.AugAssign, ast.AnnAssign)):
        return _name_of(small.target) == name
    return False
