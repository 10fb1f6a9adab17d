"""Control flow of one function, from the standard library's ``ast``: which assignments reach a
statement, and which names are assigned on every path to it.

Each simple statement is a node; a compound statement contributes a *header* node (the ``if``
test, the loop's iterable, the ``with`` items) and its blocks. Exceptions are modelled the way a
definite-assignment rule needs them: an ``except`` block can be entered from before any statement
of its ``try`` body. The analysis is path-insensitive on purpose, like CPython's own
``UnboundLocalError`` and pyright's ``reportPossiblyUnboundVariable``: two ``if`` chains over the
same condition are not assumed to agree.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field

from hdrfix.lang.names import (
    SCOPES,
    binds,
    header_binds,
    header_parts,
    loads,
    reads_of,
    stores,
)
from hdrfix.lang.readfirst import bound_before, surely_read


@dataclass(eq=False)
class Node:
    """One step of the function: a simple statement, or the header of a compound one."""

    stmt: ast.AST  # the statement (for a header: the compound statement itself)
    reads: set[str]
    writes: set[str]
    deletes: set[str] = field(default_factory=set)
    header: bool = False
    preds: list[Node] = field(default_factory=list)
    proves: set[str] = field(default_factory=set)  # names it surely read (readfirst)
    guards: tuple[int, ...] = ()  # the ``with`` / ``try``-with-``finally`` blocks around it

    @property
    def line(self) -> int:
        return getattr(self.stmt, "lineno", 0)


def _declared(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The names ``fn`` declares ``global`` or ``nonlocal``. Those are statements: only the
    statement lists are walked (a walk of every expression node was a tenth of a cold plan),
    and not those of nested functions and classes, whose declarations are their own."""
    names: set[str] = set()
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif not isinstance(node, SCOPES):
            for block in ("body", "orelse", "finalbody", "handlers", "cases"):
                stack.extend(getattr(node, block, ()))
    return names


class Flow:
    """The control-flow graph of one function and the two analyses on it."""

    def __init__(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.fn = fn
        args = fn.args
        params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        self.params = params
        self.entry = Node(fn, set(), set(params), header=True)
        self.nodes: list[Node] = [self.entry]
        self.of: dict[int, Node] = {}  # id(statement) -> its node (header for compounds)
        self.parent: dict[int, tuple[list[ast.stmt], int, ast.AST]] = {}
        self._loops: list[tuple[Node, list[Node]]] = []
        self._guards: list[int] = []
        self._block(fn.body, [self.entry], fn)
        self.locals = (set().union(*(n.writes for n in self.nodes)) | params) - _declared(fn)
        self._assigned: dict[int, frozenset[str]] | None = None
        self._statements: list[ast.stmt] | None = None
        self._reaching: dict[int, frozenset[tuple[int, str]]] | None = None
        self._bound: dict[int, frozenset[str]] | None = None

    # ---------------------------------------------------------------- construction

    def _node(self, stmt: ast.AST, preds: list[Node], **kw: object) -> Node:
        node = Node(stmt, kw.pop("reads", set()), kw.pop("writes", set()), **kw)  # type: ignore[arg-type]
        node.preds = list(preds)
        node.guards = tuple(self._guards)
        if isinstance(stmt, ast.stmt):
            parts = header_parts(stmt) if node.header else [stmt]
            node.proves = set().union(*(surely_read(p) for p in parts)) if parts else set()
        self.nodes.append(node)
        self.of.setdefault(id(stmt), node)
        return node

    def _block(self, body: list[ast.stmt], preds: list[Node], owner: ast.AST) -> list[Node]:
        for index, stmt in enumerate(body):
            self.parent[id(stmt)] = (body, index, owner)
            preds = self._stmt(stmt, preds)
        return preds

    def _stmt(self, stmt: ast.stmt, preds: list[Node]) -> list[Node]:
        if isinstance(stmt, (ast.If, ast.While, ast.For, ast.AsyncFor)):
            return self._branching(stmt, preds)
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            names = set().union(*(stores(i.optional_vars) for i in stmt.items if i.optional_vars))
            names |= header_binds(stmt)
            head = self._node(
                stmt, preds, reads=reads_of(header_parts(stmt)), writes=names, header=True
            )
            self._guards.append(id(stmt))  # its context manager may swallow a failed read
            try:
                return self._block(stmt.body, [head], stmt)
            finally:
                self._guards.pop()
        if isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            return self._try(stmt, preds)  # type: ignore[arg-type]
        if isinstance(stmt, ast.Match):
            head = self._node(
                stmt, preds, reads=loads(stmt.subject), writes=header_binds(stmt), header=True
            )
            # no case may match, unless the last matches anything (``case _:``, ``case x:``)
            last = stmt.cases[-1]
            catch_all = isinstance(last.pattern, ast.MatchAs) and last.pattern.pattern is None
            exits = [] if catch_all and last.guard is None else [head]
            for case in stmt.cases:
                caught = self._node(case, [head], writes=stores(case.pattern))
                exits += self._block(case.body, [caught], stmt)
            return exits
        node = self._node(stmt, preds, reads=loads(stmt), writes=binds(stmt))
        if isinstance(stmt, ast.Delete):
            node.deletes = {t.id for t in stmt.targets if isinstance(t, ast.Name)}
        if isinstance(stmt, (ast.Return, ast.Raise)):
            return []
        if isinstance(stmt, ast.Break) and self._loops:
            self._loops[-1][1].append(node)
            return []
        if isinstance(stmt, ast.Continue) and self._loops:
            self._loops[-1][0].preds.append(node)
            return []
        return [node]

    def _branching(self, stmt: ast.If | ast.While | ast.For | ast.AsyncFor, preds: list[Node]):
        head = self._node(
            stmt,
            preds,
            reads=reads_of(header_parts(stmt)),
            writes=header_binds(stmt),
            header=True,
        )
        if isinstance(stmt, ast.If):
            return self._block(stmt.body, [head], stmt) + (
                self._block(stmt.orelse, [head], stmt) if stmt.orelse else [head]
            )
        breaks: list[Node] = []
        self._loops.append((head, breaks))
        entry: list[Node] = [head]
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            entry = [self._node(stmt.target, [head], writes=stores(stmt.target))]
        ends = self._block(stmt.body, entry, stmt)
        self._loops.pop()
        head.preds.extend(ends)
        forever = (
            isinstance(stmt, ast.While)
            and isinstance(stmt.test, ast.Constant)
            and bool(stmt.test.value)
        )
        done = [] if forever else [head]
        if stmt.orelse:
            done = self._block(stmt.orelse, done, stmt)
        return done + breaks

    def _try(self, stmt: ast.Try, preds: list[Node]) -> list[Node]:
        if stmt.finalbody:  # a failed read inside runs the ``finally`` anyway
            self._guards.append(id(stmt))
        head = self._node(stmt, preds, header=True)
        first = len(self.nodes)
        ends = self._block(stmt.body, [head], stmt)
        raising = [head] + self.nodes[first:]  # an exception can leave after any of them
        exits: list[Node] = []
        for handler in stmt.handlers:
            caught = self._node(
                handler,
                raising,
                reads=loads(handler.type) if handler.type else set(),
                writes={handler.name} if handler.name else set(),
            )
            exits += self._block(handler.body, [caught], stmt)
        if stmt.orelse:
            ends = self._block(stmt.orelse, ends, stmt)
        exits += ends
        if stmt.finalbody:
            self._guards.pop()
            exits = self._block(stmt.finalbody, exits, stmt)
        return exits

    # ---------------------------------------------------------------- analyses

    def assigned_before(self, node: Node) -> frozenset[str] | None:
        """Names assigned on every path reaching ``node``; None if no path reaches it."""
        if self._assigned is None:
            self._assigned = self._solve_assigned()
        return self._assigned.get(id(node))

    def _solve_assigned(self) -> dict[int, frozenset[str]]:
        out: dict[int, frozenset[str]] = {}
        before: dict[int, frozenset[str]] = {}
        changed = True
        while changed:
            changed = False
            for node in self.nodes:
                if node is self.entry:
                    ins: frozenset[str] | None = frozenset()
                else:
                    known = [out[id(p)] for p in node.preds if id(p) in out]
                    ins = frozenset.intersection(*known) if known else None
                if ins is None:
                    continue
                new = (ins | node.writes) - node.deletes
                if before.get(id(node)) != ins or out.get(id(node)) != new:
                    before[id(node)], out[id(node)] = ins, frozenset(new)
                    changed = True
        return before

    def reaching(self, node: Node) -> frozenset[tuple[int, str]]:
        """(id of the defining node, name) pairs whose assignment may reach ``node``."""
        if self._reaching is None:
            self._reaching = self._solve_reaching()
        return self._reaching.get(id(node), frozenset())

    def _solve_reaching(self) -> dict[int, frozenset[tuple[int, str]]]:
        out: dict[int, frozenset[tuple[int, str]]] = {}
        before: dict[int, frozenset[tuple[int, str]]] = {}
        changed = True
        while changed:
            changed = False
            for node in self.nodes:
                ins = frozenset().union(*(out.get(id(p), frozenset()) for p in node.preds))
                killed = node.writes | node.deletes
                new = frozenset({d for d in ins if d[1] not in killed}) | {
                    (id(node), name) for name in node.writes
                }
                if before.get(id(node)) != ins or out.get(id(node)) != new:
                    before[id(node)], out[id(node)] = ins, new
                    changed = True
        return before

    def defs_of(self, name: str, at: Node) -> list[Node]:
        """The nodes whose assignment of ``name`` may reach ``at``."""
        ids = {d for d, n in self.reaching(at) if n == name}
        return [n for n in self.nodes if id(n) in ids]

    def node_of(self, stmt: ast.AST) -> Node:
        return self.of[id(stmt)]

    def statements(self) -> list[ast.stmt]:
        """Every statement of the function (not of nested scopes), outer ones first."""
        if self._statements is None:
            self._statements = [
                n.stmt
                for n in self.nodes[1:]
                if isinstance(n.stmt, ast.stmt) and n is self.of[id(n.stmt)]
            ]
        return self._statements

    def unassigned_reads(self, node: Node) -> set[str]:
        """Local names ``node`` reads that some path reaches it without binding: without
        assigning them, or without a statement that read them and went on
        (:mod:`hdrfix.lang.readfirst`)."""
        if self._bound is None:
            self._bound = bound_before(self)
        assigned = self._bound.get(id(node))
        if assigned is None:  # unreachable code reads nothing
            return set()
        return {n for n in node.reads if n in self.locals and n not in assigned}


@functools.lru_cache(maxsize=256)
def flow_of(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Flow:
    """The :class:`Flow` of ``fn``, built once per node in a process.

    ``ast`` trees are parsed once per text (``pyfile.parse_tree``), so every phase of a run, and
    each check of its edits, meets the same function nodes and asked for their graphs again. A
    graph is only read once built (its analyses fill in lazily, the same whatever asks first).
    ``ast`` nodes hash and compare by identity, and the cache holds the node it is keyed by."""
    return Flow(fn)
