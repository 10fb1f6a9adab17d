"""Which names a piece of Python syntax reads and binds, from the standard library's ``ast``:
the facts :mod:`hdrfix.lang.flow` builds its graph from, and that the phase kit asks of single
statements (a loop target, an in-place update, a module's top-level names)."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator

SCOPES = (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
BUILTINS = frozenset(dir(builtins))


def header_parts(stmt: ast.AST) -> list[ast.AST]:
    """The expressions a compound statement evaluates before entering its blocks."""
    if isinstance(stmt, (ast.If, ast.While)):
        return [stmt.test]
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return [stmt.iter]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [i.context_expr for i in stmt.items]
    if isinstance(stmt, ast.Match):
        return [stmt.subject]
    return []


def loads(node: ast.AST) -> set[str]:
    """Names an expression (or simple statement) reads when it runs.

    Lambdas and nested definitions read later, not here; a comprehension's own targets are
    not reads.
    """
    found: set[str] = set()
    _loads(node, found, frozenset())
    return found


def _loads(node: ast.AST, found: set[str], bound: frozenset[str]) -> None:
    if isinstance(node, ast.Name):
        if isinstance(node.ctx, ast.Load) and node.id not in bound:
            found.add(node.id)
        return
    if isinstance(node, ast.Lambda):
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d]:
            _loads(default, found, bound)
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        for dec in node.decorator_list:
            _loads(dec, found, bound)
        return
    if isinstance(node, COMPREHENSIONS):
        inner = set(bound)
        for gen in node.generators:
            _loads(gen.iter, found, frozenset(inner))
            inner |= stores(gen.target)
            for cond in gen.ifs:
                _loads(cond, found, frozenset(inner))
        elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for elt in elts:
            _loads(elt, found, frozenset(inner))
        return
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        found.add(node.target.id)
    for child in ast.iter_child_nodes(node):
        _loads(child, found, bound)


def stores(node: ast.AST) -> set[str]:
    """Names a target (or a whole simple statement) binds, walrus targets included."""
    found: set[str] = set()
    for sub in walk_scope(node):
        if isinstance(sub, COMPREHENSIONS):
            # ``:=`` in a comprehension binds in the function around it (PEP 572)
            found |= {n.target.id for n in ast.walk(sub) if isinstance(n, ast.NamedExpr)}
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            found.add(sub.id)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            for alias in sub.names:
                if alias.name != "*":
                    found.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(sub.name)
    return found


def walk_scope(node: ast.AST, enter: bool = False) -> Iterator[ast.AST]:
    """``ast.walk`` that does not enter nested scopes (their names are their own); ``enter``
    walks the body of ``node`` itself when it is a function."""
    stack = [node]
    while stack:
        sub = stack.pop()
        yield sub
        if (sub is not node or not enter) and isinstance(sub, SCOPES + COMPREHENSIONS):
            continue
        stack.extend(ast.iter_child_nodes(sub))


def header_binds(stmt: ast.AST) -> set[str]:
    """Names a compound statement's header binds with ``:=`` (``if (d := f(x)) is not None``):
    they are assigned there, before either arm runs, like any other assignment."""
    return set().union(*(stores(p) for p in header_parts(stmt))) if header_parts(stmt) else set()


def reads_of(parts: list[ast.AST]) -> set[str]:
    return set().union(*(loads(p) for p in parts)) if parts else set()


def binds(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
        return set()  # ``x: int`` declares, it does not assign
    updated = in_place_target(stmt)
    return stores(stmt) | ({updated} if updated else set())


#: Methods that change the object they are called on (besides torch's ``*_`` in-place ones).
MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "appendleft"})


def in_place_target(stmt: ast.AST) -> str | None:
    """``x`` for ``x.clamp_(...)``, ``x.mul_(m)``, ``x.append(v)``: the statement gives ``x`` a
    new value, so the analyses treat it as an assignment of ``x`` that reads ``x`` (and ``v``)."""
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and (
            (call.func.attr.endswith("_") and not call.func.attr.startswith("_"))
            or call.func.attr in MUTATORS
        )
    ):
        return call.func.value.id
    return None


def module_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level (imports, definitions, assignments)."""
    names: set[str] = set()
    for stmt in tree.body:
        names |= _top_binds(stmt)
    return names


def _top_binds(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
        found = stores(stmt.target) if isinstance(stmt, ast.For) else set()
        blocks = [stmt.body, getattr(stmt, "orelse", [])]
        if isinstance(stmt, ast.Try):
            blocks += [h.body for h in stmt.handlers] + [stmt.finalbody]
        for block in blocks:
            for inner in block:
                found |= _top_binds(inner)
        return found
    return stores(stmt)
