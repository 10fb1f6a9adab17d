"""Where code goes relative to a site's roots: the smallest statement holding them all, and
whether a name is assigned on every path out of a statement.
"""

from __future__ import annotations

import ast

from hdrfix.lang.flow import Flow


def _chain(flow: Flow, stmt: ast.stmt) -> list[tuple[int, int]]:
    """(id of the block, index in it) from the function body down to ``stmt``."""
    chain = []
    current: ast.AST = stmt
    while id(current) in flow.parent:
        body, index, owner = flow.parent[id(current)]
        chain.append((id(body), index))
        if owner is flow.fn:
            break
        current = owner
    return chain[::-1]


def common_anchor(flow: Flow, stmts: list[ast.stmt]) -> ast.stmt:
    """The smallest statement holding every one of ``stmts``, in the block that holds it."""
    chains = [_chain(flow, s) for s in stmts]
    depth = 0
    while all(len(c) > depth for c in chains) and len({c[depth][0] for c in chains}) == 1:
        depth += 1
    level = depth - 1 if depth else 0
    block_id = chains[0][level][0]
    index = max(c[level][1] for c in chains)
    body = next(b for b, _, _ in flow.parent.values() if id(b) == block_id)
    return body[index]


def assigned_after(flow: Flow, stmt: ast.stmt, name: str) -> bool | None:
    """Whether ``name`` is assigned on every normal path out of ``stmt`` (None: no path goes on
    after it, so the question does not arise)."""
    inside = {id(n) for n in ast.walk(stmt)}
    exits = [
        p
        for n in flow.nodes
        if id(n.stmt) not in inside and not isinstance(n.stmt, ast.ExceptHandler)
        for p in n.preds
        if id(p.stmt) in inside
    ]
    if not exits:
        return None
    for p in exits:
        before = flow.assigned_before(p)
        if before is not None and name not in (before | p.writes) - p.deletes:
            return False
    return True
