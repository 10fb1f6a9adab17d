"""Which element of a tuple the network's callers reconstruct from.

phase2 bounds the residual ``forward`` hands out. When ``forward`` returns a tuple, only the
element that Mode A consumes is that residual; bounding another one (features, a mask, a
reconstruction) would change what that element means. The callers say which it is: the
prediction Mode A applies its tanh to is followed back to the call that produced it, through
``_, pred = net(x)``, ``pred = net(x)[1]`` or ``out = net(x); pred = out[1]``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import TYPE_CHECKING

from hdrfix.lang.astmatch import assigned_value, call_name

if TYPE_CHECKING:
    from hdrfix.kit.logdomain import Analysis
    from hdrfix.lang.flow import Flow, Node

#: No caller unpacks or indexes the network's output: it is used whole.
WHOLE = None


def used_elements(analyses: Iterable[Analysis]) -> set[int | None]:
    """The tuple positions (``None``: the whole value) the sites' predictions come from."""

    found: set[int | None] = set()
    for site, flows in ((s, a.flows) for a in analyses for s in a.sites):
        flow = flows.get(site.ref.qualname)
        if flow is None:
            continue
        for root in site.roots:
            value = assigned_value(root, site.residual)
            if value is None:
                continue
            for call in ast.walk(value):
                if call_name(call) != "tanh":
                    continue
                assert isinstance(call, ast.Call)
                argument = _tanh_argument(call)
                if isinstance(argument, ast.Name):
                    found |= _positions(flow, argument.id, flow.node_of(root), None, 3)
                elif isinstance(argument, ast.Subscript) and isinstance(argument.value, ast.Call):
                    found.add(_constant_int(argument.slice))  # ``tanh(net(x)[1])``
                elif isinstance(argument, ast.Call):
                    found.add(WHOLE)
    return found


def _tanh_argument(call: ast.Call) -> ast.AST | None:
    if len(call.args) == 1 and not call.keywords:
        return call.args[0]
    if not call.args and isinstance(call.func, ast.Attribute):
        return call.func.value  # ``x.tanh()``
    return None


def _positions(flow: Flow, name: str, at: Node, index: int | None, depth: int) -> set[int | None]:
    """Where ``name`` (indexed by ``index``, if given) comes from at ``at``: a position in a
    call's returned tuple, or ``None`` for a call's whole value."""
    found: set[int | None] = set()
    for definition in flow.defs_of(name, at):
        stmt = definition.stmt
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            continue
        target, value = stmt.targets[0], stmt.value
        position = index
        if isinstance(target, ast.Tuple):
            names = [getattr(e, "id", None) for e in target.elts]
            if name not in names or any(isinstance(e, ast.Starred) for e in target.elts):
                continue
            position = names.index(name)
        if isinstance(value, ast.Subscript) and _constant_int(value.slice) is not None:
            if position is not None:
                continue  # ``a, b = net(x)[0]``: an element of an element, not followed
            position, value = _constant_int(value.slice), value.value
        if isinstance(value, ast.Call):
            found.add(position)
        elif isinstance(value, ast.Name) and depth > 0:
            found |= _positions(flow, value.id, definition, position, depth - 1)
    return found


def _constant_int(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
        return node.value
    return None
