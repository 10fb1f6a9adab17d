"""The log-domain reconstruction of a Python file, found by data flow (DESIGN §2, §2.1).

A *use* is ``exp(<log image> + <residual>)``, the sum written inside the call or assigned to a
name first (``Ln_hat = log_img + delta_log``). From the residual operand, the assignments that
reach the use are followed back through rescales (``delta_log = delta_log * mask_weight``),
clamps, copies and the returns of helper methods (alone or in a tuple) to the assignments that
*compute* it from the network's prediction: the *roots* (Mode A and Mode B). A *site* is one
group of roots in one function, with every use they reach. A residual that no root computes
from a prediction (a ground truth, ``gt_delta_log = target_log - log_img``) is not a site.

The *anchor* of a site is the smallest statement that holds all of its roots, in the block that
holds them (the Mode A / Mode B ``if``), never a statement of an enclosing block: code that
must see the computed residual goes right after it.

Everything here reads the standard library's ``ast`` of the file as it stands (so a phase sees
the edits of the phases before it); :class:`CstIndex` maps a statement to the libcst node the
phases edit.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hdrfix.edit.astmatch import (
    LOG_CALLS,
    ClampCall,
    assigned_value,
    call_name,
    call_owner,
    calls_with_lambda,
    clamp_of,
    inline_clamp,
    module_aliases,
    own_expressions,
    sum_of_names,
    target_name,
)
from hdrfix.edit.flow import Flow, Node, in_place_target, loads

if TYPE_CHECKING:
    from hdrfix.edit.pyfile import FunctionRef, PyFile


@dataclass(frozen=True)
class Use:
    """One ``exp`` of a log image plus the residual."""

    ref: FunctionRef
    node: Node  # the statement computing the sum (the ``Ln_hat`` assignment, or the exp's)
    exp: ast.Call
    residual: str  # the residual's name at the sum
    log_image: str
    recon: ast.Assign | ast.AnnAssign | None  # ``Ln_hat = log_img + delta_log``, when named
    at: Node  # the statement holding the exp call
    bound: ClampCall | None = None  # ``exp(torch.clamp(log_img + delta_log, max=...))``


@dataclass
class Site:
    rel: str
    ref: FunctionRef  # the function computing the residual (a helper, or the step itself)
    residual: str  # its name there
    roots: list[ast.stmt]  # the assignments computing it: Mode A, Mode B
    anchor: ast.stmt  # the smallest statement holding every root, in their block
    uses: list[Use] = field(default_factory=list)
    torch: str | None = None  # the file's name for torch (``T`` after ``import torch as T``)
    numpy: str | None = None  # ... and for numpy, where the exp is numpy's

    @property
    def line(self) -> int:
        return self.anchor.lineno

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.ref.qualname, self.residual, self.anchor.lineno)


@dataclass(frozen=True)
class Unhandled:
    """Something that looks like a site but that hdrfix does not edit (it says so)."""

    line: int
    qualname: str
    why: str


@dataclass
class Analysis:
    sites: list[Site]
    unhandled: list[Unhandled]
    flows: dict[str, Flow]

    def uses(self) -> Iterator[tuple[Site, Use]]:
        for site in self.sites:
            for use in site.uses:
                yield site, use


def analyse(pyfile: PyFile) -> Analysis:
    """Every site of the file (cached on the file: it is re-indexed after each edit)."""
    cached = pyfile.analyses.get(("logdomain", ""))
    if cached is not None and cached[0] is pyfile.tree:
        return cached[1]  # type: ignore[return-value]
    result = _Analyser(pyfile).run()
    pyfile.analyses[("logdomain", "")] = (pyfile.tree, result)
    return result


# --------------------------------------------------------------------------- the analysis


@dataclass
class _Trace:
    roots: list[tuple[FunctionRef, ast.stmt]] = field(default_factory=list)
    prediction: bool = False
    returned_expression: bool = False  # a helper returns the residual as an expression
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # line, qualname, why


class _Analyser:
    def __init__(self, pyfile: PyFile) -> None:
        self.pyfile = pyfile
        self.flows: dict[str, Flow] = {}
        self.unhandled: list[Unhandled] = []

    def flow(self, ref: FunctionRef) -> Flow:
        if ref.qualname not in self.flows:
            self.flows[ref.qualname] = Flow(self.pyfile.node(ref))
        return self.flows[ref.qualname]

    def run(self) -> Analysis:
        groups: dict[tuple[str, str], Site] = {}
        for ref in self.pyfile.functions:
            if not _exponentiates(self.pyfile.segment(ref)):
                continue
            for use, trace in self._uses(ref):
                for line, qualname, why in trace.problems:
                    self._unhandled(line, qualname, why)
                if not trace.roots:
                    continue
                by_fn: dict[str, list[tuple[FunctionRef, ast.stmt]]] = {}
                for root_ref, stmt in trace.roots:
                    by_fn.setdefault(root_ref.qualname, []).append((root_ref, stmt))
                for roots in by_fn.values():
                    self._group(groups, roots, use)
        sites = sorted(groups.values(), key=lambda s: (s.ref.line, s.line))
        for site in sites:
            self._twice(site)
        self._strays(sites)
        return Analysis(sites, _dedupe(self.unhandled), self.flows)

    def _unhandled(self, line: int, qualname: str, why: str) -> None:
        self.unhandled.append(Unhandled(line, qualname, why))

    # -- uses --------------------------------------------------------------------------------
    def _uses(self, ref: FunctionRef) -> Iterator[tuple[Use, _Trace]]:
        flow = self.flow(ref)
        for stmt in flow.statements():
            node = flow.node_of(stmt)
            for expr in own_expressions(stmt):
                for call, in_lambda in calls_with_lambda(expr):
                    arg = exp_argument(call) if call_name(call) in EXP_CALLS else None
                    if arg is None:
                        continue
                    if in_lambda:
                        if isinstance(arg, ast.BinOp):
                            self._unhandled(
                                call.lineno, ref.qualname, "exp of a sum inside a lambda"
                            )
                        continue
                    yield from self._use(ref, flow, node, call)

    def _use(self, ref: FunctionRef, flow: Flow, node: Node, call: ast.Call):
        """The uses of one exp call: one per assignment of the sum that reaches it."""
        arg = exp_argument(call)
        assert arg is not None
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

    # -- tracing the residual back -----------------------------------------------------------
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
        value = assigned_value(stmt, name)
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
        if any(isinstance(n, ast.NamedExpr) for n in ast.walk(stmt)) and name in d.writes:
            walrus = next(
                n for n in ast.walk(stmt) if isinstance(n, ast.NamedExpr) and n.target.id == name
            )
            if self._predicted(ref, flow, d, walrus.value, set()):
                result.prediction = True
                result.problems.append(
                    (stmt.lineno, ref.qualname, f"{name} is assigned with := inside an expression")
                )

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

    # -- sites -------------------------------------------------------------------------------
    def _group(self, groups, roots: list[tuple[FunctionRef, ast.stmt]], use: Use) -> None:
        ref = roots[0][0]
        flow = self.flow(ref)
        stmts = [s for _, s in roots]
        anchor = common_anchor(flow, stmts)
        residual = target_name(stmts[0], use.residual)
        key = (ref.qualname, f"{residual}:{anchor.lineno}")
        site = groups.get(key)
        if site is None:
            aliases = module_aliases(self.pyfile.tree, self.pyfile.node(ref))
            torch = next((a for a, m in aliases.items() if m == "torch"), None)
            owner = call_owner(use.exp)
            numpy = owner if owner and aliases.get(owner) == "numpy" else None
            if owner and aliases.get(owner) == "torch":
                torch = owner
            site = Site(self.pyfile.rel, ref, residual, stmts, anchor, torch=torch, numpy=numpy)
            groups[key] = site
        else:
            site.roots += [s for s in stmts if s not in site.roots]
            site.anchor = common_anchor(flow, site.roots)
        if use not in site.uses:
            site.uses.append(use)

    def _strays(self, sites: list[Site]) -> None:
        """A residual computed from the network (a tanh of its output) that no site accounts
        for, in a function that exponentiates it or has no site at all: hdrfix cannot follow
        it to its reconstruction (``log_img.mul(...)``, a product of exps, a nested function),
        so it is listed rather than left unclamped without a word."""
        roots = {id(r) for s in sites for r in s.roots}
        with_sites = {s.ref.qualname for s in sites} | {
            u.ref.qualname for s in sites for u in s.uses
        }
        for ref in self.pyfile.functions:
            segment = self.pyfile.segment(ref)
            if not _exponentiates(segment) or "tanh(" not in segment:
                continue
            fn = self.pyfile.node(ref)
            exponentiated = {
                n.id
                for call in ast.walk(fn)
                if isinstance(call, ast.Call) and call_name(call) in EXP_CALLS
                for n in ast.walk(call)
                if isinstance(n, ast.Name)
            }
            flow = self.flow(ref)
            for stmt in flow.statements():
                name = target_name(stmt)
                value = assigned_value(stmt, name) if name else None
                if value is None or id(stmt) in roots or name in loads(value):
                    continue
                if not any(call_name(c) == "tanh" for c in ast.walk(value)):
                    continue
                if name not in exponentiated and ref.qualname in with_sites:
                    continue
                if self._predicted(ref, flow, flow.node_of(stmt), value, set()):
                    self._unhandled(
                        stmt.lineno,
                        ref.qualname,
                        f"{name} is computed from the network's output but reaches no "
                        f"exp(<log image> + {name}) hdrfix can follow; clamp it by hand",
                    )

    def _twice(self, site: Site) -> None:
        """A prediction assigned to the residual that no use sees: assigned twice on a path."""
        flow = self.flow(site.ref)
        for stmt in flow.statements():
            if stmt in site.roots:
                continue
            value = assigned_value(stmt, site.residual)
            if value is None or site.residual in loads(value) or clamp_of(stmt, site.residual):
                continue
            node = flow.node_of(stmt)
            if self._predicted(site.ref, flow, node, value, set()):
                self._unhandled(
                    stmt.lineno,
                    site.ref.qualname,
                    f"{site.residual} is computed here and again before it is used",
                )


def callers(pyfile: PyFile, flow_of, ref: FunctionRef, param: str):
    """(caller, its calling statement's node, the argument for ``param``) for every call of the
    method ``ref`` as ``self.<name>(...)`` (or of the function ``ref``) in the file."""
    fn = pyfile.node(ref)
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    if ref.class_name and params and params[0] == "self":
        params = params[1:]
    found = []
    for caller in pyfile.functions:
        if caller.class_name != ref.class_name or caller.qualname == ref.qualname:
            continue
        if f"{ref.name}(" not in pyfile.segment(caller):
            continue
        flow = flow_of(caller)
        for stmt in flow.statements():
            for expr in own_expressions(stmt):
                for call in (n for n in ast.walk(expr) if isinstance(n, ast.Call)):
                    func = call.func
                    named = (
                        isinstance(func, ast.Attribute)
                        and func.attr == ref.name
                        and isinstance(func.value, ast.Name)
                        and func.value.id == "self"
                    ) or (
                        ref.class_name is None
                        and isinstance(func, ast.Name)
                        and func.id == ref.name
                    )
                    if not named:
                        continue
                    arg: ast.AST | None = next(
                        (k.value for k in call.keywords if k.arg == param), None
                    )
                    if arg is None and param in params and params.index(param) < len(call.args):
                        arg = call.args[params.index(param)]
                    found.append((caller, flow.node_of(stmt), arg))
    return found


def callee(pyfile: PyFile, ref: FunctionRef, value: ast.AST) -> FunctionRef | None:
    """The method of the same class (``self.helper(...)``) or module function ``value`` calls."""
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "self"
        and ref.class_name
    ):
        return pyfile.function(f"{ref.class_name}.{func.attr}")
    if isinstance(func, ast.Name) and func.id == "self" and ref.class_name:
        return pyfile.function(f"{ref.class_name}.forward")  # ``self(...)`` runs forward
    if isinstance(func, ast.Name):
        return pyfile.function(func.id)
    return None


#: Back from the log domain: ``exp``, and ``expm1`` where the log image was taken with ``log1p``.
EXP_CALLS = frozenset({"exp", "expm1"})
#: Methods that hand back their tensor's values in another dtype or device: ``x.float()``.
CASTS = frozenset({"float", "double", "half", "bfloat16", "to", "type", "contiguous"})
MODULES = frozenset({"torch", "np", "numpy", "math"})


def exp_argument(call: ast.Call) -> ast.expr | None:
    """What an exp call exponentiates: ``torch.exp(x)`` or ``x.exp()``, looking through a
    cast of ``x`` (``x.float()``)."""
    if len(call.args) == 1 and not call.keywords:
        arg: ast.expr = call.args[0]
    elif not call.args and isinstance(call.func, ast.Attribute):
        arg = call.func.value
        if isinstance(arg, ast.Name) and arg.id in MODULES:
            return None
    else:
        return None
    while (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Attribute)
        and arg.func.attr in CASTS
        and not (isinstance(arg.func.value, ast.Name) and arg.func.value.id in MODULES)
    ):
        arg = arg.func.value
    return arg


def returned(flow: Flow, index: int | None) -> Iterator[tuple[ast.Return, ast.expr]]:
    """Each ``return`` of the function with the value it hands back (``index``: the element
    of a returned tuple; returns of another shape are left out)."""
    for stmt in flow.statements():
        if not isinstance(stmt, ast.Return) or stmt.value is None:
            continue
        value: ast.expr = stmt.value
        if index is not None:
            if not isinstance(value, (ast.Tuple, ast.List)) or index >= len(value.elts):
                continue
            value = value.elts[index]
        yield stmt, value


def _exponentiates(text: str) -> bool:
    return "exp(" in text or "expm1(" in text


def index_in(target: ast.Tuple | ast.List, name: str) -> int | None:
    for i, elt in enumerate(target.elts):
        if isinstance(elt, ast.Starred):
            return None
        if isinstance(elt, ast.Name) and elt.id == name:
            return i
    return None


def _dedupe(items: list[Unhandled]) -> list[Unhandled]:
    return sorted(set(items), key=lambda u: (u.line, u.why))


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
