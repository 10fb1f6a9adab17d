"""Whether a site's residual is clamped on every path from its computation to its uses."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hdrfix.kit.logdomain import Analysis, Site, callee, callers, index_in, returned
from hdrfix.kit.logdomain.calls import loop_source
from hdrfix.lang.astmatch import ClampCall, assigned_value, clamp_of, walrus_value
from hdrfix.lang.flow import Flow, Node
from hdrfix.lang.flow import flow_of as graph_of
from hdrfix.lang.names import in_place_target, loads

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import FunctionRef, PyFile


@dataclass(frozen=True)
class ClampState:
    clamped: bool  # every path from the roots to every use passes a clamp no wider than asked
    ignored: list[str]  # hand clamps that do not count, with their line and why


def clamp_state(analysis: Analysis, pyfile: PyFile, site: Site, bound: float) -> ClampState:
    memo: dict[tuple[str, int, str], bool] = {}
    ignored: list[str] = []

    def good(clamp: ClampCall) -> bool:
        return (
            clamp.literal
            and clamp.low is not None
            and clamp.high is not None
            and clamp.low >= -bound
            and clamp.high <= bound
        )

    def unclamped(ref: FunctionRef, flow: Flow, d: Node, name: str) -> bool:
        key = (ref.qualname, id(d), name)
        if key in memo:
            return memo[key]
        memo[key] = True  # a cycle (a loop) is not a clamp
        stmt = d.stmt
        result = True
        clamp = clamp_of(stmt, name) if d is not flow.entry else None
        value = _value(stmt, name, d) if d is not flow.entry else None
        if clamp is not None and good(clamp):
            result = False
        elif (
            clamp is not None
            or isinstance(stmt, ast.AugAssign)
            or (d is not flow.entry and in_place_target(stmt) == name)
            or (value is not None and name in loads(value))
        ):
            result = any(unclamped(ref, flow, p, name) for p in flow.defs_of(name, d))
        elif isinstance(value, ast.Name):
            result = any(unclamped(ref, flow, p, value.id) for p in flow.defs_of(value.id, d))
        elif stmt in site.roots:
            result = True
        elif d is flow.entry:
            result = not _callers_clamped(ref, name)
        else:
            result = _through_helper(ref, stmt, name)
        memo[key] = result
        return result

    def flow_of(ref: FunctionRef) -> Flow:
        if ref.qualname not in analysis.flows:
            analysis.flows[ref.qualname] = graph_of(pyfile.node(ref))
        return analysis.flows[ref.qualname]

    def _callers_clamped(ref: FunctionRef, param: str) -> bool:
        found = callers(pyfile, flow_of, ref, param)
        for caller, at, arg in found:
            if not isinstance(arg, ast.Name):
                return False
            flow = flow_of(caller)
            if any(unclamped(caller, flow, p, arg.id) for p in flow.defs_of(arg.id, at)):
                return False
        return bool(found)

    def _through_helper(ref: FunctionRef, stmt: ast.AST, name: str) -> bool:
        value = stmt.value if isinstance(stmt, ast.Assign) else None
        index = None
        loop = loop_source(flow_of(ref), stmt)
        if loop is not None:  # ``for log_img, delta_log in self._tiles(x)``
            value = loop[1]
            if isinstance(stmt, (ast.Tuple, ast.List)):
                index = index_in(stmt, name)
                if index is None:
                    return True
        if not isinstance(value, ast.Call):
            return True
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], (ast.Tuple, ast.List)):
            index = index_in(stmt.targets[0], name)
        called = callee(pyfile, ref, value)
        if called is None:
            return True
        flow = flow_of(called)
        for ret, element in returned(flow, index):
            if not isinstance(element, ast.Name):
                return True
            node = flow.node_of(ret)
            if any(unclamped(called, flow, p, element.id) for p in flow.defs_of(element.id, node)):
                return True
        return False

    clamped = True
    for use in site.uses:
        flow = analysis.flows[use.ref.qualname]
        if any(
            unclamped(use.ref, flow, d, use.residual) for d in flow.defs_of(use.residual, use.node)
        ):
            clamped = False
    for ref_name in {site.ref.qualname} | {u.ref.qualname for u in site.uses}:
        flow = analysis.flows[ref_name]
        names = {site.residual} | {u.residual for u in site.uses if u.ref.qualname == ref_name}
        for stmt in flow.statements():
            for name in names:
                clamp = clamp_of(stmt, name)
                if clamp is None:
                    continue
                where = f"{site.rel}:{clamp.line}"
                if not clamp.literal:
                    ignored.append(f"{where}: a clamp of {name} whose bounds are not numbers")
                elif clamp.low is None or clamp.high is None:
                    ignored.append(f"{where}: a one-sided clamp of {name}")
                elif not good(clamp):
                    ignored.append(
                        f"{where}: a clamp of {name} to [{clamp.low:g}, {clamp.high:g}], "
                        f"wider than +-{bound:g}"
                    )
                elif not _reaches_a_use(flow, stmt, name, site, ref_name):
                    ignored.append(f"{where}: a clamp of {name} after its use")
    return ClampState(clamped, sorted(set(ignored)))


def _reaches_a_use(flow: Flow, stmt: ast.AST, name: str, site: Site, ref_name: str) -> bool:
    node = flow.node_of(stmt)
    for use in site.uses:
        if use.ref.qualname == ref_name and node in upstream(flow, use.node, use.residual):
            return True
    # Where the residual leaves this function for its use (returned by a helper, or passed to
    # the helper that exponentiates it), a clamp reaching a read of it there counts.
    if ref_name == site.ref.qualname and all(u.ref.qualname != ref_name for u in site.uses):
        for later in flow.statements():
            value = getattr(later, "value", None)
            if later is stmt or not isinstance(later, (ast.Return, ast.Expr, ast.Assign)):
                continue
            if value is None or name not in loads(value):
                continue
            if node in upstream(flow, flow.node_of(later), name):
                return True
    return False


def upstream(flow: Flow, at: Node, name: str) -> list[Node]:
    """Definitions of ``name`` whose value flows into ``at`` (through self-updates)."""
    found: list[Node] = []
    stack = flow.defs_of(name, at)
    while stack:
        d = stack.pop()
        if d in found:
            continue
        found.append(d)
        value = _value(d.stmt, name, d) if d is not flow.entry else None
        updates = (
            clamp_of(d.stmt, name) or in_place_target(d.stmt) == name or _augmented(d.stmt, name)
        )
        if updates or (value is not None and name in loads(value)):
            stack.extend(flow.defs_of(name, d))
    return found


def _augmented(stmt: ast.AST, name: str) -> bool:
    """``name *= mask`` and the like: a new value of ``name`` computed from the old one."""
    target = stmt.target if isinstance(stmt, ast.AugAssign) else None
    return isinstance(target, ast.Name) and target.id == name


def _value(stmt: ast.AST, name: str, node: Node) -> ast.expr | None:
    """What ``stmt`` assigns to ``name``: ``name = v``, or ``(name := v)`` in what it evaluates
    (an ``if``/``while`` test too): a walrus after the clamp is a reassignment like any other."""
    value = assigned_value(stmt, name)
    if value is None and name in node.writes:
        value = walrus_value(stmt, name)
    return value
