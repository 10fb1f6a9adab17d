"""Finding the log-domain reconstruction in a function, by structure.

The shape, whatever the names::

    log_img = torch.log(...)                    # the log image: assigned from a log() call
    <residual> = ... tanh(<prediction>) ...     # Mode A and/or Mode B, maybe in an if/else
    <residual> = <residual> * mask_weight       # optional
    Ln_hat = log_img + <residual>               # or the sum written inside exp()
    prediction = torch.exp(Ln_hat) - eps

A *site* is found from the ``exp`` call backwards: its argument is a sum of two names; the one
assigned from a ``log`` call is the log image and the other is the residual. The residual's
*computation* is its first assignment that does not read the residual itself, lifted to the
enclosing ``if``/``else`` when every branch of that ``if`` only assigns the residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from hdrfix.cst_match import (
    Assignment,
    Place,
    call_name,
    call_owner,
    find_all,
    name_of,
    names_in,
    unparen,
)

CLAMP_CALLS = frozenset({"clamp", "clip", "clamp_", "clip_"})


@dataclass(frozen=True)
class Site:
    residual: str  # e.g. "delta_log"
    log_image: str  # e.g. "log_img"
    compute: Place  # the statement computing the residual, in the block that holds it
    assigns: tuple[Assignment, ...]  # the assignments inside ``compute`` (Mode A, Mode B)
    recon: Assignment | None  # ``Ln_hat = log_img + delta_log``, when it has a name
    exp_call: cst.Call
    torch: str  # the name torch is imported as

    @property
    def mode_a(self) -> Assignment | None:
        """The absolute-cap branch: the ``if`` body, or the lone assignment outside an ``if``.

        The field writes ``if self.log_delta_abs_max > 0.0:`` Mode A ``else:`` Mode B.
        """
        stmt = self.compute.stmt
        if not isinstance(stmt, cst.If):
            return self.assigns[0] if self.assigns else None
        return next((a for a in self.assigns if any(p.block is stmt.body for p in a.chain)), None)


def find_sites(fn: cst.FunctionDef) -> list[Site]:
    from hdrfix.cst_match import assignments

    by_name: dict[str, list[Assignment]] = {}
    for a in assignments(fn.body):
        by_name.setdefault(a.target, []).append(a)
    calls = _ExpCalls()
    fn.visit(calls)
    sites: list[Site] = []
    seen: set[int] = set()
    for call, enclosing in calls.found:
        found = _site_for(call, enclosing, by_name)
        if found is not None and id(found.compute.stmt) not in seen:
            seen.add(id(found.compute.stmt))
            sites.append(found)
    return sites


class _ExpCalls(cst.CSTVisitor):
    """Every ``exp(...)`` call with the ids of the statements enclosing it, in one traversal."""

    def __init__(self) -> None:
        self.stack: list[int] = []
        self.found: list[tuple[cst.Call, frozenset[int]]] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.BaseStatement, cst.BaseSmallStatement)):
            self.stack.append(id(node))
        elif isinstance(node, cst.Call) and call_name(node) == "exp" and node.args:
            self.found.append((node, frozenset(self.stack)))
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, (cst.BaseStatement, cst.BaseSmallStatement)):
            self.stack.pop()


def _site_for(
    call: cst.Call, enclosing: frozenset[int], by_name: dict[str, list[Assignment]]
) -> Site | None:
    arg = unparen(call.args[0].value)
    recon: Assignment | None = None
    name = name_of(arg)
    if name is not None:
        recon = next((a for a in by_name.get(name, []) if _sum_of_names(a.value)), None)
        if recon is None:
            return None
        arg = unparen(recon.value)
        enclosing = frozenset(id(p.stmt) for p in recon.chain)
    operands = _sum_of_names(arg)
    if operands is None:
        return None
    logs = [n for n in operands if any(_reads_log(a.value) for a in by_name.get(n, []))]
    if len(logs) != 1:
        return None
    log_image = logs[0]
    residual = operands[1] if operands[0] == log_image else operands[0]
    computes = [a for a in by_name.get(residual, []) if residual not in names_in(a.value)]
    if not computes:
        return None
    compute = _lift(computes[0], enclosing)
    inside = tuple(a for a in computes if compute in a.chain)
    torch = call_owner(call) or "torch"
    return Site(residual, log_image, compute, inside, recon, call, torch)


def _sum_of_names(node: cst.BaseExpression) -> tuple[str, str] | None:
    node = unparen(node)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        left, right = name_of(node.left), name_of(node.right)
        if left and right:
            return left, right
    return None


def _reads_log(value: cst.BaseExpression) -> bool:
    return any(call_name(c) in {"log", "log1p"} for c in find_all(value, cst.Call))


def _lift(a: Assignment, use: frozenset[int]) -> Place:
    """The statement to clamp after: the assignment, lifted out of every enclosing ``if`` that
    does not also hold the residual's use (``use``: ids of the statements around it), so that
    all branches (Mode A and B) are covered."""
    place = a.chain[-1]
    for outer in reversed(a.chain[:-1]):
        if isinstance(outer.stmt, cst.If) and id(outer.stmt) not in use:
            place = outer
        else:
            break
    if isinstance(place.stmt, cst.BaseSmallStatement):
        # A one-line ``x = ...; y = ...`` line: clamp after the whole line.
        return a.chain[-2] if len(a.chain) > 1 else place
    return place


def is_clamp_of(stmt: cst.CSTNode, name: str) -> bool:
    """``x = torch.clamp(x, ...)``, ``x = x.clamp(...)``, ``x.clamp_(...)`` and the like."""
    smalls = stmt.body if isinstance(stmt, cst.SimpleStatementLine) else [stmt]
    for small in smalls:
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and name_of(small.targets[0].target) == name
            and _clamps(small.value, name)
        ):
            return True
        if isinstance(small, cst.Expr) and _clamps(small.value, name):
            return True
    return False


def _clamps(value: cst.BaseExpression, name: str) -> bool:
    value = unparen(value)
    if call_name(value) not in CLAMP_CALLS:
        return False
    assert isinstance(value, cst.Call)
    func = value.func
    if isinstance(func, cst.Attribute) and name_of(func.value) == name:
        return True
    return bool(value.args) and name_of(value.args[0].value) == name


def clamped_after(site: Site) -> bool:
    """Whether the residual is clamped in the same block after its computation."""
    body = site.compute.block.body
    return any(is_clamp_of(stmt, site.residual) for stmt in body[site.compute.index + 1 :])


def insert_after(
    fn: cst.FunctionDef, anchor: cst.CSTNode, new: list[cst.BaseStatement]
) -> cst.FunctionDef:
    """``fn`` with ``new`` statements right after ``anchor`` in whichever block holds it."""
    inserter = _Inserter(anchor, new)
    result = fn.visit(inserter)
    if not inserter.done:
        raise LookupError("anchor statement not found")
    assert isinstance(result, cst.FunctionDef)
    return result


class _Inserter(cst.CSTTransformer):
    def __init__(self, anchor: cst.CSTNode, new: list[cst.BaseStatement]) -> None:
        self.anchor = anchor
        self.new = new
        self.done = False

    def leave_IndentedBlock(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        for index, stmt in enumerate(original.body):
            if stmt is self.anchor:
                self.done = True
                body = list(updated.body)
                return updated.with_changes(body=body[: index + 1] + self.new + body[index + 1 :])
        return updated
