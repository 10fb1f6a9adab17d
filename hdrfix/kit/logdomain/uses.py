"""Finding the uses in a function: each ``exp`` of a log image plus a residual, written in the
call or assigned to a name first, with the trace of its residual.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hdrfix.kit.logdomain.exps import Exponential, exp_names, exponentials
from hdrfix.kit.logdomain.model import Use
from hdrfix.kit.logdomain.tracing import _Trace, _Tracer
from hdrfix.lang.astmatch import (
    LOG_CALLS,
    assigned_value,
    call_name,
    clamp_of,
    inline_clamp,
    own_expressions,
    sum_of_names,
    target_name,
)
from hdrfix.lang.flow import Flow, Node
from hdrfix.lang.names import in_place_target, loads

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import FunctionRef


class _UseFinder(_Tracer):
    """The half of an analysis that finds the uses and traces their residuals."""

    def _uses(self, ref: FunctionRef) -> Iterator[tuple[Use, _Trace]]:
        flow = self.flow(ref)
        for stmt in flow.statements():
            node = flow.node_of(stmt)
            for expr in own_expressions(stmt):
                for exp in self.exponentials(expr):
                    arg = exp.argument
                    if arg is None:
                        continue  # listed by the check of every exponential
                    if exp.in_lambda:
                        if isinstance(arg, ast.BinOp) and isinstance(arg.op, (ast.Add, ast.Sub)):
                            self._unhandled(exp.line, ref.qualname, "exp of a sum inside a lambda")
                        continue
                    yield from self._use(ref, flow, node, exp.node, arg)

    def exponentials(self, expr: ast.AST) -> list[Exponential]:
        """The exponentials in ``expr``, found once per analysis."""
        found = self._exps.get(id(expr))
        if found is None:
            found = self._exps[id(expr)] = list(exponentials(expr, *self.exp_names))
        return found

    @property
    def exp_names(self) -> tuple[frozenset[str], frozenset[str]]:
        if self._exp_names is None:
            self._exp_names = exp_names(self.pyfile.tree)
        return self._exp_names

    def _use(self, ref: FunctionRef, flow: Flow, node: Node, call: ast.expr, arg: ast.expr):
        """The uses of one exponential: one per assignment of the sum that reaches it."""
        inline = inline_clamp(arg)
        if inline is not None:
            arg = inline[1]
        Recon = ast.Assign | ast.AnnAssign | None
        candidates: list[tuple[Node, Recon, ast.expr | None]] = [(node, None, arg)]
        if isinstance(arg, ast.Name):
            candidates = [
                (
                    d,
                    d.stmt if isinstance(d.stmt, (ast.Assign, ast.AnnAssign)) else None,
                    assigned_value(d.stmt, arg.id),
                )
                for d in self._sums(flow, arg.id, node, set())
            ]
        for at, recon, value in candidates:
            found = self._one_use(ref, flow, node, call, at, recon, value, inline)
            if found is not None:
                yield found

    def _one_use(self, ref, flow, node, call, at, recon, value, inline):
        operands = sum_of_names(value)
        if operands is None:
            if (
                isinstance(value, ast.BinOp)
                and isinstance(value.op, ast.Add)
                and self._predicted(ref, flow, at, value, set())
            ):
                self._unhandled(
                    call.lineno,
                    ref.qualname,
                    "exp of the log image plus an expression: assign the residual to a name "
                    "first (delta_log = ...)",
                )
            return None
        traces = {name: self._trace(ref, flow, name, at, set()) for name in operands}
        predicted = [n for n in operands if traces[n].prediction]
        if len(predicted) == 2:
            # a log image a helper hands on (``yield log_img[i:i + 1], delta_log``) reads like a
            # helper's formula; the residual is the operand traced to its computation
            predicted = [n for n in operands if traces[n].roots] or predicted
        if operands[0] == operands[1] or len(predicted) == 2:
            return None
        if not predicted:
            self._untraced(ref, flow, at, call, operands)
            return None
        residual = predicted[0]
        log_image = operands[1] if operands[0] == residual else operands[0]
        bound = inline[0] if inline is not None else None
        trace = traces[residual]
        trace.roots += self._gathered(trace.roots)
        return Use(ref, at, call, residual, log_image, recon, node, bound), trace

    def _gathered(self, roots: list[tuple[FunctionRef, ast.stmt]]) -> list[tuple[FunctionRef, Any]]:
        """Assignments of the same name that a root gathers without a tanh of its own, e.g.
        ``delta_log = torch.cat(chunks)`` after a loop that computes ``delta_log`` per chunk
        and appends it: those are where Mode A and Mode B are, so they are roots too."""
        found: list[tuple[FunctionRef, Any]] = []
        for ref, root in roots:
            name = target_name(root)
            value = assigned_value(root, name)
            if not name or value is None or any(call_name(c) == "tanh" for c in ast.walk(value)):
                continue
            flow = self.flow(ref)
            stack = [(n, flow.node_of(root)) for n in loads(value)]
            seen: set[tuple[str, int]] = set()
            while stack:
                read, at = stack.pop()
                for d in flow.defs_of(read, at):
                    if (read, id(d)) in seen or d is flow.entry:
                        continue
                    seen.add((read, id(d)))
                    gathered = assigned_value(d.stmt, name)
                    if read == name and gathered is not None:
                        if (ref, d.stmt) not in roots + found and self._predicted(
                            ref, flow, d, gathered, set()
                        ):
                            found.append((ref, d.stmt))
                    elif in_place_target(d.stmt) == read:
                        stack.extend((n, d) for n in d.reads)
        return found

    def _untraced(self, ref, flow: Flow, at: Node, call: ast.Call, operands) -> None:
        """exp(<log image> + <x>) where x is neither traced to the network nor computed from
        data alone (a ground truth): a parameter, or a helper's result hdrfix cannot follow."""
        for name in operands:
            for d in flow.defs_of(name, at):
                if d is flow.entry and ref.class_name and not ref.name.endswith("_step"):
                    why = f"{name} comes in as a parameter of {ref.name}, from no call hdrfix sees"
                elif d is not flow.entry and any(
                    isinstance(c, ast.Call) and self._callee(ref, c) is not None
                    for e in own_expressions(d.stmt)
                    for c in ast.walk(e)
                ):
                    why = f"{name} comes from a helper whose result hdrfix cannot follow"
                else:
                    continue
                other = operands[1] if operands[0] == name else operands[0]
                if any(
                    call_name(c) in LOG_CALLS
                    for od in flow.defs_of(other, at)
                    if od is not flow.entry
                    for e in own_expressions(od.stmt)
                    for c in ast.walk(e)
                ):
                    self._unhandled(call.lineno, ref.qualname, why)
                    return

    def _sums(self, flow: Flow, name: str, at: Node, seen: set[int]) -> list[Node]:
        """The assignments ``name = a + b`` reaching ``at``, through ``name = f(name)``."""
        found: list[Node] = []
        for d in flow.defs_of(name, at):
            if id(d) in seen:
                continue
            seen.add(id(d))
            value = assigned_value(d.stmt, name)
            if value is not None and sum_of_names(value):
                found.append(d)
            elif (
                (value is not None and name in loads(value))
                or clamp_of(d.stmt, name)
                or in_place_target(d.stmt) == name
            ):
                found += self._sums(flow, name, d, seen)
        return found
