"""A read proves a name bound: the second half of the definite-assignment rule.

A statement that reads a local name, and completes, found it bound: had it been unbound, the
read would have raised ``UnboundLocalError`` and nothing after it would run. So a later read of
the same name, on a path that only goes on through that statement, cannot be the first to
fail. This is what lets code inserted inside a block read what the block itself already used
(a term beside the loss that reads ``delta_log`` right after ``smooth_l1_loss(delta_log, ...)``).

Only reads that surely ran count (:func:`surely_read`): not the right of ``and``/``or``, not the
arms of ``a if c else b``, not the inside of a lambda or of a comprehension past its first
iterable, not an ``assert`` (``python -O`` drops it). And a failed read can be swallowed: by an
``except`` (the control-flow graph enters handlers from before any statement of the ``try``
body, so a proof never reaches them), by a ``with`` whose context manager suppresses the error,
or into a ``finally`` that runs anyway. Proofs made inside a ``with`` body or inside a ``try``
that has a ``finally`` are therefore dropped on leaving it: they protect the rest of that block
only.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence, Set
from typing import Protocol


class _Node(Protocol):
    """What :func:`bound_before` reads of a :class:`hdrfix.lang.flow.Node` (protocols, so
    that flow, which calls this module, is not imported back from here)."""

    @property
    def preds(self) -> Sequence[_Node]: ...
    @property
    def guards(self) -> tuple[int, ...]: ...
    @property
    def proves(self) -> Set[str]: ...
    @property
    def writes(self) -> Set[str]: ...
    @property
    def deletes(self) -> Set[str]: ...


class _Flow(Protocol):
    @property
    def nodes(self) -> Sequence[_Node]: ...
    @property
    def entry(self) -> _Node: ...


#: A proof: (name, the innermost guarded block that held the read, 0 outside any).
Proof = tuple[str, int]


def surely_read(node: ast.AST) -> set[str]:
    """The names an expression or simple statement reads whenever it completes."""
    found: set[str] = set()
    if not isinstance(node, ast.Assert):
        _visit(node, found)
    return found


def _visit(node: ast.AST, found: set[str]) -> None:
    if isinstance(node, ast.Name):
        if isinstance(node.ctx, ast.Load):
            found.add(node.id)
        return
    if isinstance(node, ast.BoolOp):
        _visit(node.values[0], found)
        return
    if isinstance(node, ast.IfExp):
        _visit(node.test, found)
        return
    if isinstance(node, ast.Lambda):
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d]:
            _visit(default, found)
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        _visit(node.generators[0].iter, found)
        return
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        found.add(node.target.id)
    for child in ast.iter_child_nodes(node):
        _visit(child, found)


def bound_before(flow: _Flow) -> dict[int, frozenset[str]]:
    """Per node id: the names bound on every path reaching it, by assignment or by a read
    that ran (see the module's doc); nodes no path reaches are absent."""
    state: dict[int, frozenset[str | Proof]] = {}
    before: dict[int, frozenset[str | Proof]] = {}
    changed = True
    while changed:
        changed = False
        for node in flow.nodes:
            if node is flow.entry:
                ins: frozenset[str | Proof] | None = frozenset()
            else:
                known = [_entering(state[id(p)], node.guards) for p in node.preds if id(p) in state]
                ins = frozenset.intersection(*known) if known else None
            if ins is None:
                continue
            tag = node.guards[-1] if node.guards else 0
            proved = {(name, tag) for name in node.proves}
            new = frozenset(x for x in ins | node.writes | proved if _name(x) not in node.deletes)
            if before.get(id(node)) != ins or state.get(id(node)) != new:
                before[id(node)], state[id(node)] = ins, new
                changed = True
    return {key: frozenset(_name(x) for x in value) for key, value in before.items()}


def _entering(state: frozenset[str | Proof], guards: tuple[int, ...]) -> frozenset[str | Proof]:
    """What an edge carries into a node: proofs made in a guarded block it is not inside of
    are dropped (the failed read could have been swallowed there)."""
    return frozenset(x for x in state if isinstance(x, str) or x[1] == 0 or x[1] in guards)


def _name(item: str | Proof) -> str:
    return item if isinstance(item, str) else item[0]
