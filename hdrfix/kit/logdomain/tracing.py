"""Tracing a residual back from a use to the assignments that compute it from the network's
prediction, through rescales, clamps, copies, helpers' returns and callers' arguments.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hdrfix.kit.logdomain.calls import callee, callers, index_in, loop_source, returned
from hdrfix.kit.logdomain.model import Unhandled
from hdrfix.lang.astmatch import (
    LOG_CALLS,
    assigned_value,
    call_name,
    clamp_of,
    own_expressions,
    walrus_value,
)
from hdrfix.lang.flow import Flow, Node, flow_of
from hdrfix.lang.names import in_place_target, loads

if TYPE_CHECKING:
    from hdrfix.kit.logdomain.exps import Exponential
    from hdrfix.lang.pyfile import FunctionRef, PyFile


@dataclass
class _Trace:
    roots: list[tuple[FunctionRef, ast.stmt]] = field(default_factory=list)
    prediction: bool = False
    returned_expression: bool = False  # a helper returns the residual as an expression
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # line, qualname, why


class _Tracer:
    """The per-file state of an analysis and the tracing half of it."""

    def __init__(self, pyfile: PyFile) -> None:
        self.pyfile = pyfile
        self.flows: dict[str, Flow] = {}
        self.unhandled: list[Unhandled] = []
        self._exp_names: tuple[frozenset[str], frozenset[str]] | None = None
        # the exponentials of each expression: the uses and the check of every exp read them
        self._exps: dict[int, list[Exponential]] = {}

    def flow(self, ref: FunctionRef) -> Flow:
        if ref.qualname not in self.flows:
            self.flows[ref.qualname] = flow_of(self.pyfile.node(ref))
        return self.flows[ref.qualname]

    def _unhandled(self, line: int, qualname: str, why: str) -> None:
        self.unhandled.append(Unhandled(line, qualname, why))

    def _trace(self, ref: FunctionRef, flow: Flow, name: str, at: Node, seen: set) -> _Trace:
        result = _Trace()
        for d in flow.defs_of(name, at):
            key = (ref.qualname, id(d), name)
            if key in seen:
                continue
            seen.add(key)
            self._trace_def(ref, flow, name, d, seen, result)
        return result

    def _trace_def(self, ref, flow, name, d: Node, seen, result: _Trace) -> None:
        stmt: Any = d.stmt
        if d is flow.entry:
            for caller, at, arg in self._callers(ref, name):
                if isinstance(arg, ast.Name):
                    self._merge(result, self._trace(caller, self.flow(caller), arg.id, at, seen))
                elif arg is not None and self._predicted(caller, self.flow(caller), at, arg, set()):
                    result.prediction = True
                    result.problems.append(
                        (at.line, caller.qualname, f"the residual passed to {ref.name} has no name")
                    )
            return
        loop = loop_source(flow, stmt)
        if loop is not None:
            # ``for log_img, delta_log in self._tiles(x)``: what the helper yields or returns
            helper = self._callee(ref, loop[1])
            index = index_in(stmt, name) if isinstance(stmt, (ast.Tuple, ast.List)) else None
            if helper is not None and (index is not None or isinstance(stmt, ast.Name)):
                self._merge(result, self._through_returns(helper, index, seen))
            return
        value = assigned_value(stmt, name)
        if value is None and name in d.writes:
            value = walrus_value(stmt, name)
            if value is not None and name not in loads(value) and not isinstance(stmt, ast.If):
                # ``out = exp(log_img + (d := ...))``, ``while (d := ...)``: no place after the
                # assignment comes before every read of it
                if self._predicted(ref, flow, d, value, set()):
                    where = "a while test" if isinstance(stmt, ast.While) else "an expression"
                    result.prediction = True
                    result.problems.append(
                        (stmt.lineno, ref.qualname, f"{name} is assigned with := inside {where}")
                    )
                return
        if (
            clamp_of(stmt, name)
            or isinstance(stmt, ast.AugAssign)
            or in_place_target(stmt) == name
            or (value is not None and name in loads(value))
        ):
            self._merge(result, self._trace(ref, flow, name, d, seen))
            return
        if value is not None:
            callee = self._callee(ref, value)
            if callee is not None:
                returned = self._through_returns(callee, None, seen)
                if returned.returned_expression and not returned.roots:
                    # ``return alpha * tanh(r) * cap``: the call's result is the residual, so
                    # the caller's assignment is where it is computed
                    returned.roots.append((ref, stmt))
                self._merge(result, returned)
                return
            if self._predicted(ref, flow, d, value, set()):
                result.roots.append((ref, stmt))
                result.prediction = True
            return
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, (ast.Tuple, ast.List)):
                index = index_in(target, name)
                callee = self._callee(ref, stmt.value)
                if callee is not None and index is not None:
                    self._merge(result, self._through_returns(callee, index, seen))
                    return
                if isinstance(stmt.value, (ast.Tuple, ast.List)) and index is not None:
                    element = stmt.value.elts[index]
                    if self._predicted(ref, flow, d, element, set()):
                        result.prediction = True
                        result.roots.append((ref, stmt))
                    return
                if self._predicted(ref, flow, d, stmt.value, set()):
                    result.prediction = True
                    result.problems.append(
                        (stmt.lineno, ref.qualname, f"{name} is unpacked from a tuple")
                    )
                return

    def _through_returns(self, callee: FunctionRef, index: int | None, seen: set) -> _Trace:
        """Follow a helper's returns (``index``: the element of a returned tuple)."""
        result = _Trace()
        flow = self.flow(callee)
        for stmt, value in returned(flow, index):
            node = flow.node_of(stmt)
            if isinstance(value, ast.Name):
                self._merge(result, self._trace(callee, flow, value.id, node, seen))
            elif self._predicted(callee, flow, node, value, set()):
                result.prediction = True
                result.returned_expression = True
        return result

    def _callers(self, ref: FunctionRef, param: str) -> list[tuple[FunctionRef, Node, ast.AST]]:
        """Where the methods of the class call ``ref``, with the argument given for ``param``."""
        return callers(self.pyfile, self.flow, ref, param)

    @staticmethod
    def _merge(into: _Trace, other: _Trace) -> None:
        into.roots += [r for r in other.roots if r not in into.roots]
        into.prediction |= other.prediction
        into.problems += other.problems

    def _callee(self, ref: FunctionRef, value: ast.expr) -> FunctionRef | None:
        return callee(self.pyfile, ref, value)

    def _predicted(
        self, ref, flow: Flow, at: Node, value: ast.AST, seen: set, top: bool = True
    ) -> bool:
        """Whether ``value`` derives from the network's prediction: it applies ``tanh``, calls
        a network (``self.patch_network(...)``, a callable parameter), or, being a helper
        method's own formula (``d = pred * scale``), reads a parameter and takes no log."""
        for call in (n for n in ast.walk(value) if isinstance(n, ast.Call)):
            if call_name(call) == "tanh" or self._network_call(ref, flow, call):
                return True
        for name in loads(value):
            if name == "self":
                continue
            for d in flow.defs_of(name, at):
                if (ref.qualname, id(d)) in seen:
                    continue
                seen.add((ref.qualname, id(d)))
                if d is flow.entry:
                    helper = top and ref.class_name and not ref.name.endswith("_step")
                    if helper and not any(call_name(c) in LOG_CALLS for c in ast.walk(value)):
                        return True
                    continue
                inner = own_expressions(d.stmt)
                if any(self._predicted(ref, flow, d, e, seen, top=False) for e in inner):
                    return True
        return False

    def _network_call(self, ref, flow: Flow, call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Name):
            return func.id in flow.params and func.id != "self"
        root = func
        depth = 0
        while isinstance(root, ast.Attribute):
            root, depth = root.value, depth + 1
        if not (isinstance(root, ast.Name) and root.id == "self"):
            return False
        if depth == 1 and isinstance(func, ast.Attribute) and ref.class_name:
            return self.pyfile.function(f"{ref.class_name}.{func.attr}") is None
        return depth >= 1
