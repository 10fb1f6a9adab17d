"""Finding and bounding the residual that ``PatchNetwork.forward`` hands out, by structure.

The field's forward ends with a linear output layer whose result is returned, and in one branch
also used to build ``(residual, reconstructed)``. Names vary (``residual``, ``out``, ``pred``, or
no name at all), so the residual is found from the ``return`` statements backwards:

* ``return r`` / ``return r, <reconstructed>``: ``r`` is followed back to the assignment that
  produces it (its last assignment before the return that does not read ``r`` itself), lifted
  out of any branch so that it covers the return, then past its in-place post-processing
  (``r = r[:, :, :h, :w]``, ``r = F.interpolate(r, ...)``) up to the first other use. The bound
  ``r = torch.tanh(r) * self.residual_output_scale`` goes there, so every later use (the tuple's
  reconstruction, ``self.refine(r)``, the plain return) sees the bounded residual.
* ``return self.head(features)``, a call with no name: the call is wrapped in place.

A return is *covered* when what it hands out already went through
``tanh(...) * self.residual_output_scale`` (written by hdrfix or by hand): covered returns get
nothing, so the bound is applied exactly once on every path. Bounds are placed earliest first,
so one bound on a shared residual covers every return that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from hdrfix.lang.astblocks import divergence
from hdrfix.lang.cst.edit import FunctionEdit
from hdrfix.lang.cst.match import (
    Place,
    attr_of_self,
    call_name,
    contains,
    find_all,
    loaded_names,
    name_of,
    product_factors,
    small_statements,
    sub_suites,
    unparen,
)
from hdrfix_plugins.phase2 import levels
from hdrfix_plugins.phase2.netinit import (  # noqa: F401  (phase2 and tests use them from here)
    Unrecognised,
    add_scale_parameter,
    has_scale_parameter,
)
from hdrfix_plugins.phase2.scale import PARAM as SCALE_ATTR

SHAPES = (
    "`return <name>` with <name> assigned in forward, `return <name>, <reconstructed>` "
    "and `return <call>(...)`"
)


# -- forward -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardPlan:
    edit: FunctionEdit  # empty when every return is already covered

    @property
    def done(self) -> bool:
        return not self.edit


@dataclass(frozen=True)
class _Return:
    index: int  # position among the small statements
    stmt: cst.Return
    chain: tuple[Place, ...]
    head: cst.BaseExpression  # the residual: the value, or the tuple's first element


@dataclass(frozen=True)
class _NameBound:
    name: str
    anchor: cst.CSTNode  # insert after this statement
    after: int  # index of the last small statement inside ``anchor``
    per_element: bool = False  # ``name`` holds a list of residuals (``levels``)


def bound_forward(fn: cst.FunctionDef, torch: str, element: int | None = None) -> ForwardPlan:
    """Plan ``tanh * residual_output_scale`` once on every return path that is not covered yet.

    ``element``: in a returned tuple, the position of the residual (the one the callers
    reconstruct from); the first when the callers do not say.
    Raises :class:`Unrecognised` when a return hands out something else than a name or a call.
    """
    smalls = list(small_statements(fn.body))
    returns = [
        _return(i, s, c, element or 0)
        for i, (s, c) in enumerate(smalls)
        if isinstance(s, cst.Return) and not _returns_nothing(s)
    ]
    if not returns:
        raise Unrecognised(fn, "forward has no `return` of a value")
    bounds: list[_NameBound] = []
    wraps: list[_Return] = []
    while True:
        open_ = [r for r in _uncovered(smalls, returns, bounds) if r not in wraps]
        if not open_:
            break
        candidates = [(_candidate(smalls, r), r) for r in open_]
        first, ret = min(candidates, key=lambda c: _position(c[0]))
        if isinstance(first, _NameBound):
            if any(b.anchor is first.anchor and b.name == first.name for b in bounds):
                raise Unrecognised(ret.stmt, "its residual is reassigned after the bound")
            bounds.append(first)
        else:
            wraps.append(ret)
    edit = FunctionEdit()
    for b in bounds:
        edit.insert_after(
            b.anchor,
            levels.bound_statement(b.name, torch, SCALE_ATTR)
            if b.per_element
            else cst.parse_statement(f"{b.name} = {torch}.tanh({b.name}) * self.{SCALE_ATTR}"),
        )
    for r in wraps:
        _wrap(edit, r, torch)
    return ForwardPlan(edit)


def _position(candidate: _NameBound | _Return) -> int:
    return candidate.after if isinstance(candidate, _NameBound) else candidate.index


def _return(index: int, stmt: cst.Return, chain: tuple[Place, ...], element: int) -> _Return:
    value = unparen(stmt.value) if stmt.value is not None else None
    head = value
    if isinstance(value, cst.Tuple):
        elements = value.elements
        if len(elements) <= element or any(
            isinstance(e, cst.StarredElement) for e in elements[: element + 1]
        ):
            raise Unrecognised(
                stmt, f"it returns a tuple with no element {element}, which the callers use"
            )
        head = elements[element].value
    assert head is not None
    return _Return(index, stmt, chain, head)


def _returns_nothing(stmt: cst.Return) -> bool:
    return stmt.value is None or (isinstance(stmt.value, cst.Name) and stmt.value.value == "None")


def is_scaled_tanh(node: cst.CSTNode) -> bool:
    """Whether ``node`` holds ``tanh(...) * self.residual_output_scale`` (in any product order)."""
    for op in contains(node, cst.BinaryOperation):
        assert isinstance(op, cst.BinaryOperation)
        if isinstance(op.operator, cst.Multiply):
            factors = product_factors(op)
            if any(call_name(f) == "tanh" for f in factors) and any(
                attr_of_self(f) == SCALE_ATTR for f in factors
            ):
                return True
    return False


def _uncovered(
    smalls: list[tuple[cst.CSTNode, tuple[Place, ...]]],
    returns: list[_Return],
    bounds: list[_NameBound],
) -> list[_Return]:
    """The returns whose residual has not gone through a bound, walking in source order.

    A name is *scaled* once assigned a bounded value or anything computed from a scaled name,
    and stops being scaled when assigned something else; planned bounds count as written.
    """
    planned: dict[int, list[str]] = {}
    for b in bounds:
        planned.setdefault(b.after, []).append(b.name)
    by_index = {r.index: r for r in returns}
    scaled: set[str] = set()
    uncovered = []
    for index, (small, _) in enumerate(smalls):
        if isinstance(small, cst.Assign) and len(small.targets) == 1:
            target = name_of(small.targets[0].target)
            if target is not None:
                if is_scaled_tanh(small.value) or loaded_names(small.value) & scaled:
                    scaled.add(target)
                else:
                    scaled.discard(target)
        elif index in by_index:
            head = by_index[index].head
            if not (is_scaled_tanh(head) or loaded_names(head) & scaled):
                uncovered.append(by_index[index])
        scaled.update(planned.get(index, ()))
    return uncovered


def _candidate(
    smalls: list[tuple[cst.CSTNode, tuple[Place, ...]]], ret: _Return
) -> _NameBound | _Return:
    """Where to bound this return's residual: after its name's producer, or the call itself."""
    head = ret.head
    name = name_of(head)
    if name is None:
        if (
            levels.elements(head)
            or isinstance(head, cst.Call)
            or (isinstance(head, cst.Subscript) and isinstance(unparen(head.value), cst.Call))
        ):
            return ret
        raise Unrecognised(ret.stmt, "its value is neither a name nor a call")
    producers = [
        (s, c)
        for i, (s, c) in enumerate(smalls[: ret.index])
        if isinstance(s, cst.Assign)
        and len(s.targets) == 1
        and name_of(s.targets[0].target) == name
        and name not in loaded_names(s.value)
    ]
    for producer, chain in reversed(producers):
        depth = divergence(chain, ret.chain)
        if depth is None:
            continue
        per_element = levels.builds_list(producer.value)  # type: ignore[attr-defined]
        anchor = chain[depth]
        anchor = _past_postprocessing(anchor, name, ret.chain[depth].index, per_element)
        if not isinstance(anchor.block, cst.IndentedBlock):
            raise Unrecognised(ret.stmt, f"`{name}` is produced on the same line as the return")
        last = max(i for i, (_, c) in enumerate(smalls) if any(p.stmt is anchor.stmt for p in c))
        return _NameBound(name, anchor.stmt, last, per_element)
    raise Unrecognised(ret.stmt, f"`{name}` is not assigned in forward before the return")


def _past_postprocessing(anchor: Place, name: str, limit: int, is_list: bool) -> Place:
    """The last in-place post-processing of ``name`` after ``anchor``, before any other use
    (for a list: the appends that fill it, too)."""
    body = anchor.block.body
    last = anchor
    for index in range(anchor.index + 1, limit):
        stmt = body[index]
        smalls = _smalls_of(stmt)
        if any(isinstance(s, cst.Return) for s in smalls):
            break
        if (smalls and all(_reassigns_from_itself(s, name) for s in smalls)) or (
            is_list and levels.fills(stmt, name)
        ):
            last = Place(anchor.block, index, stmt)
        elif name in loaded_names(stmt) or any(_assigns(s, name) for s in smalls):
            break
    return last


def _smalls_of(stmt: cst.CSTNode) -> list[cst.CSTNode]:
    if isinstance(stmt, cst.SimpleStatementLine):
        return list(stmt.body)
    if isinstance(stmt, cst.BaseSmallStatement):
        return [stmt]
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return []
    return [s for suite in sub_suites(stmt) for s, _ in small_statements(suite)]


def _reassigns_from_itself(small: cst.CSTNode, name: str) -> bool:
    return _assigns(small, name) and name in loaded_names(small.value)  # type: ignore[attr-defined]


def _assigns(small: cst.CSTNode, name: str) -> bool:
    return isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign)) and name in {
        name_of(t) for t in _targets(small)
    }


def _targets(small: cst.CSTNode) -> list[cst.CSTNode]:
    if isinstance(small, cst.Assign):
        return [t.target for t in small.targets]
    return [small.target]  # type: ignore[attr-defined]


def _wrap(edit: FunctionEdit, ret: _Return, torch: str) -> None:
    """``return f(x)`` -> ``return torch.tanh(f(x)) * self.residual_output_scale``.

    In a tuple, copies of the call in the other elements (a reconstruction) are wrapped too.
    """

    def bounded(node: cst.BaseExpression) -> cst.BaseExpression:
        template = cst.parse_expression(f"{torch}.tanh(_) * self.{SCALE_ATTR}")
        assert isinstance(template, cst.BinaryOperation) and isinstance(template.left, cst.Call)
        call = template.left.with_changes(args=[cst.Arg(node)])
        return template.with_changes(left=call)

    value = ret.stmt.value
    assert value is not None
    listed = levels.elements(ret.head)
    if listed is not None:  # ``return [a, b]``: each level is a residual
        for element in listed:
            edit.swap(element, bounded(element))
        return
    tuple_ = unparen(value)
    if not isinstance(tuple_, cst.Tuple):
        edit.swap(value, bounded(value))  # the node itself: ``unparen`` copies
        return
    # ``unparen`` copies the tuple but not its elements, so these are the tree's own nodes
    targets = [ret.head] + [
        n
        for element in tuple_.elements
        if element.value is not ret.head
        for n in find_all(element, type(ret.head))
        if n.deep_equals(ret.head)
    ]
    for node in targets:
        edit.swap(node, bounded(node))  # type: ignore[arg-type]
