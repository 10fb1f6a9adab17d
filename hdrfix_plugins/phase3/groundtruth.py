"""The ground-truth log residual a training step builds in steps, and where phase3's term can
read it.

The log supervision often computes its ground truth through intermediates, inside its own
block::

    if self.<enable> and ...:
        try:
            target_pos = clamp(target, min=0)
            log_target = log(target_pos + eps)      # its own eps
            gt = log_target - log_img
            diff = delta_log - gt
            ...

``gt`` is followed back as the residual is: a difference whose left side is, through its
definitions, a ``log``, and whose right side is the log image. The term then goes right after
the first statement of that block from which on everything it reads is bound on every path
(the engine's rule, :mod:`hdrfix.lang.assigned`, with reads that ran counting as binding), so
it compares against the very tensor the supervision uses.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING

from hdrfix.lang.astmatch import LOG_CALLS, call_name

if TYPE_CHECKING:
    from hdrfix.kit.logdomain import Use
    from hdrfix.lang.flow import Flow

#: How many assignments back a ground truth's log is followed.
DEPTH = 4


def stepwise_ground_truth(flow: Flow, use: Use) -> ast.Assign | None:
    """``gt = <name> - <log image>``, ``<name>`` a log through its definitions, or None."""
    for stmt in flow.statements():
        if not (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.BinOp)
            and isinstance(stmt.value.op, ast.Sub)
            and isinstance(stmt.value.right, ast.Name)
            and stmt.value.right.id == use.log_image
            and isinstance(stmt.value.left, ast.Name)
            and stmt.targets[0].id != use.residual
        ):
            continue
        if _is_log(flow, stmt.value.left.id, flow.node_of(stmt), DEPTH):
            return stmt
    return None


def _is_log(flow: Flow, name: str, at, depth: int) -> bool:
    """Whether every assignment of ``name`` reaching ``at`` computes a log (directly, or from
    a name that does)."""

    defs = [d for d in flow.defs_of(name, at) if d is not flow.entry]
    if not defs or depth == 0:
        return False
    for definition in defs:
        stmt = definition.stmt
        value = getattr(stmt, "value", None)
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or value is None:
            return False
        if any(call_name(c) in LOG_CALLS for c in ast.walk(value)):
            continue
        if not (isinstance(value, ast.Name) and _is_log(flow, value.id, definition, depth - 1)):
            return False
    return True


def first_safe_place(
    flow: Flow, gt: ast.Assign, safe_after: Callable[[ast.stmt], bool]
) -> ast.stmt | None:
    """The first statement of the ground truth's block, from its own assignment on, after
    which the term may go (``safe_after`` says, by the engine's rule)."""
    body, index, _ = flow.parent[id(gt)]
    for stmt in body[index:]:
        if safe_after(stmt):
            return stmt
    return None
