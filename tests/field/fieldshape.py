"""The field suite's readings of code by structure: the mode a method dispatches on, and where
phase3's statements sit in a training step (beside docs/design.md §2.1's ``gt_delta_log``,
``log_sup_loss`` and ``self.log_sup_enable``, the only names used)."""

from __future__ import annotations

import ast
from pathlib import Path


def mode_attribute_of(fn: ast.AST) -> tuple[str, str] | None:
    """(``self`` path, attribute) compared with 'log' in ``fn``: ``getattr(self.cfg, 'k', d)``
    or ``self.cfg.k``."""
    for node in ast.walk(fn):
        if not isinstance(node, ast.Compare) or not any(
            isinstance(c, ast.Constant) and c.value == "log" for c in node.comparators
        ):
            continue
        left = node.left
        if (
            isinstance(left, ast.Call)
            and isinstance(left.func, ast.Name)
            and left.func.id == "getattr"
        ):
            owner, key = left.args[0], left.args[1]
            if isinstance(key, ast.Constant):
                return ast.unparse(owner).removeprefix("self").lstrip("."), key.value
        if isinstance(left, ast.Attribute):
            return ast.unparse(left.value).removeprefix("self").lstrip("."), left.attr
    return None


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def training_step_of(repo: Path, rel: str) -> ast.FunctionDef:
    tree = ast.parse((repo / rel).read_text(encoding="utf-8"))
    return next(
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "training_step"
    )


def _block_of(stmt: ast.stmt, parents: dict) -> list[ast.stmt]:
    parent = parents[stmt]
    for field in ("body", "orelse", "finalbody", "handlers"):
        block = getattr(parent, field, None)
        if isinstance(block, list) and stmt in block:
            return block
    raise AssertionError(ast.unparse(stmt))


def _within(node: ast.AST, ancestor: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if node is ancestor:
            return True
    return False


def _reads(node: ast.AST, name: str) -> bool:
    return any(
        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
        for n in ast.walk(node)
    )


def check_phase3_placement(phase1_step: ast.FunctionDef, step: ast.FunctionDef) -> None:
    """phase3's statements (what ``step`` has beyond ``phase1_step``): the term is computed after
    the real ``gt_delta_log`` is assigned, in its block (or nested there), is added to a loss
    beside ``log_sup_loss``, and all of it sits under the ``if`` on ``self.log_sup_enable``."""
    before = {ast.unparse(s) for s in ast.walk(phase1_step) if isinstance(s, ast.stmt)}
    parents = _parents(step)
    added = [
        s
        for s in ast.walk(step)
        if isinstance(s, (ast.Assign, ast.AugAssign))
        and ast.unparse(s) not in before
        and not (isinstance(s.value, ast.Constant) and s.value.value is None)  # `x = None`
    ]
    made = {
        n.id for s in added for t in _targets(s) for n in ast.walk(t) if isinstance(n, ast.Name)
    }
    adds = [  # `loss = loss + w * term`: reads its own target and a name phase3 made
        s
        for s in added
        if any(_reads(s.value, n) for n in _names(s))
        and any(_reads(s.value, m) for m in made - _names(s))
    ]
    term = [s for s in added if s not in adds]
    assert term and adds, "phase3 added no term, or never adds it to a loss"
    gt = [s for s in ast.walk(step) if isinstance(s, ast.Assign) and "gt_delta_log" in _names(s)]
    assert gt, "the training step has no gt_delta_log"
    for s in term:
        assert any(_after_in_block(s, g, parents) for g in gt), ast.unparse(s)
    sup_add = [
        s
        for s in ast.walk(step)
        if isinstance(s, ast.Assign)
        and _reads(s.value, "log_sup_loss")
        and isinstance(s.value, ast.BinOp)
    ]
    for s in adds:  # beside the supervision's addition: its block, or the `if` right after it
        assert any(_beside(s, parents[a], parents) for a in sup_add), ast.unparse(s)
    for s in term + adds:  # the same switch as the log supervision
        node, guarded = s, False
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.If) and "self.log_sup_enable" in ast.unparse(node.test):
                guarded = True
        assert guarded, ast.unparse(s)


def _targets(stmt: ast.Assign | ast.AugAssign) -> list[ast.expr]:
    return list(stmt.targets) if isinstance(stmt, ast.Assign) else [stmt.target]


def _names(stmt: ast.Assign | ast.AugAssign) -> set[str]:
    return {n.id for t in _targets(stmt) for n in ast.walk(t) if isinstance(n, ast.Name)}


def _beside(stmt: ast.stmt, guard: ast.AST, parents: dict) -> bool:
    """``stmt`` is inside ``guard`` (the statement that adds the supervision), or inside the
    statement that directly follows it: its own ``if``, guarded by the same switch."""
    if _within(stmt, guard, parents):
        return True
    if not isinstance(guard, ast.stmt) or guard not in parents:
        return False
    block = _block_of(guard, parents)
    following = block[block.index(guard) + 1 : block.index(guard) + 2]
    return any(stmt is f or _within(stmt, f, parents) for f in following)


def _after_in_block(stmt: ast.stmt, first: ast.stmt, parents: dict) -> bool:
    """``stmt`` is ``first``'s later sibling, or nested inside one."""
    block = _block_of(first, parents)
    node: ast.AST = stmt
    while True:
        if node in block:
            return block.index(node) > block.index(first)
        if node not in parents:
            return False
        node = parents[node]
