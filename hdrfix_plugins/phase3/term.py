"""Where phase3's loss term goes in a training step, and the edit that puts it there.

The term reads the residual, the log image and the target's log; each of its three statements
goes where what it reads is assigned on every path (see :func:`plan_term`).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

import libcst as cst

from hdrfix.core.plugin import PhasePlan
from hdrfix.kit.logdomain import analyse, common_anchor
from hdrfix.lang.assigned import violations
from hdrfix.lang.cst.edit import FunctionEdit
from hdrfix.lang.cst.index import cst_index
from hdrfix.lang.cst.lines import FunctionLines
from hdrfix.lang.cst.match import (
    assignments,
    attr_of_self,
    find_all,
    fresh_name,
    name_of,
    product_factors,
    statement_holding,
    string_value,
    unparen,
)
from hdrfix.lang.errors import HdrfixError
from hdrfix_plugins.phase3.groundtruth import first_safe_place, stepwise_ground_truth
from hdrfix_plugins.phase3.keys import LOSS_KEY, WEIGHT_KEY

if TYPE_CHECKING:
    from hdrfix.lang.cst.match import Assignment
    from hdrfix.lang.pyfile import FunctionRef, PyFile

# The same operations, in the same order, as hdrfix.nn.losses (so the values agree to the bit).
# {q} is the file's quote; the other fields are names from the training step, or fresh ones.
TERM_HEAD = """\
if {enable}self.{loss_key} != {q}none{q}:
"""
# Omitted where the step's own ground-truth residual is read (``groundtruth``).
TARGET = """\
    {target_delta} = {target_log} - {log_img}
"""
TERM = """\
    if self.{loss_key} == {q}histogram{q}:
        {pred_sorted} = {torch}.sort({delta}.flatten(1), dim=1).values
        {target_sorted} = {torch}.sort({target_delta}.flatten(1), dim=1).values
        {dist} = ({pred_sorted} - {target_sorted}).abs().mean()
    elif self.{loss_key} == {q}moment{q}:
        {mean_diff} = ({delta}.flatten(1).mean(dim=1) - {target_delta}.flatten(1).mean(dim=1)).abs()
        {var_diff} = ({delta}.flatten(1).var(dim=1) - {target_delta}.flatten(1).var(dim=1)).abs()
        {dist} = ({mean_diff} + {var_diff}).mean()
    elif self.{loss_key} == {q}sparsity{q}:
        {dist} = {delta}.abs().mean()
    else:
        raise ValueError(f{q}unknown {loss_key}: {{self.{loss_key}!r}}{q})
"""
# The term is added where the log-supervision term is added, under the same switch.
ADD = """\
if {enable}{dist} is not None:
    {total} = {total} + self.{weight_key} * {dist}
"""
TEMPORARIES = ("target_delta", "pred_sorted", "target_sorted", "mean_diff", "var_diff", "dist_loss")


def plan_term(
    plan: PhasePlan,
    rel: str,
    pyfile: PyFile,
    ref: FunctionRef,
    quote: str,
    weights: set[str | None],
    enable: str | None,
) -> None:
    """The training-step item, and the edit that adds the term when it is missing.

    Three statements, each where what it reads is assigned on every path:
    ``dist_loss = None`` before the top-level statement holding the residual's computation;
    the term right after the residual's last assignment (inside the log arm of a dispatch on
    ``norm_type``); and the weighted add after the log-supervision add (or, without one,
    before the ``return`` of the loss), both under the log supervision's enable switch.
    """

    fn = pyfile.cst(ref)
    lines = FunctionLines(ref, fn, pyfile)
    what = f"{ref.qualname}: add {WEIGHT_KEY} * residual-distribution loss"
    assigns = list(assignments(fn.body))
    added = next((a for a in assigns if _weighted_add(a, {WEIGHT_KEY})), None)
    if added is not None:
        plan.done(rel, lines.line(added.chain[-1].stmt), what)
        return
    analysis = analyse(pyfile)
    uses = [(site, use) for site, use in analysis.uses() if use.ref.qualname == ref.qualname]
    if not uses:
        using = sorted({u.ref.name for _, u in analysis.uses()})
        where = f" (the reconstruction is in {', '.join(using)})" if using else ""
        raise HdrfixError(
            f"{ref.qualname} has no log-domain reconstruction of its own{where}, so the "
            "residual is not in scope where its loss is made",
            rel,
            ref.line,
            hint="add the residual-distribution term by hand where delta_log and the loss meet",
        )
    # A residual computed without gradient (a teacher's, under ``torch.no_grad()``) cannot be
    # trained by the term: it goes on the first one the optimiser can reach.
    flow = analysis.flows[ref.qualname]
    site, use = next(((s, u) for s, u in uses if not _without_grad(flow, u.at.stmt)), uses[0])
    if site.torch is None:
        raise HdrfixError(
            "the trainer does not import torch", rel, hint="add `import torch` at its top"
        )
    index = cst_index(pyfile, ref)
    compute_after = _after_residual(flow, use)
    target_log = _gt_target(flow, use)
    stepwise = None if target_log else stepwise_ground_truth(flow, use)
    if target_log is None and stepwise is None:
        target_log = _target_log(fn, assigns, use, index)
    supervision = _supervision_term(assigns, weights)
    if supervision is not None:
        add_after, total = supervision
    else:
        add_after, total = _loss_return(fn)
    if target_log is None and stepwise is None:
        raise HdrfixError(
            f"{ref.qualname}: found no ground-truth log residual nor the target of the "
            "reconstruction loss to match the residual's distribution against",
            rel,
            ref.line,
            hint="add the term by hand",
        )
    fresh = {name: fresh_name(fn, name) for name in TEMPORARIES}
    dist = fresh.pop("dist_loss")
    if stepwise is not None:
        fresh["target_delta"] = stepwise.targets[0].id  # type: ignore[attr-defined]
    switch = f"self.{enable} and " if enable else ""
    fields = {
        "q": quote,
        "enable": switch,
        "loss_key": LOSS_KEY,
        "torch": site.torch,
        "delta": use.residual,
        "log_img": use.log_image,
        "target_log": target_log,
        "dist": dist,
        **fresh,
    }
    term = cst.parse_statement(
        (TERM_HEAD + ("" if stepwise is not None else TARGET) + TERM).format(**fields)
    )
    add = ADD.format(enable=switch, dist=dist, total=total, weight_key=WEIGHT_KEY)

    def edit_after(stmt) -> cst.FunctionDef:
        return (
            FunctionEdit()
            .insert_before(
                index.stmt(_top_level(flow, stmt)), cst.parse_statement(f"{dist} = None")
            )
            .insert_after(index.stmt(stmt), term)
            .insert_after(add_after, cst.parse_statement(add))
            .apply(fn)
        )

    if stepwise is not None:
        compute_after = _beside_ground_truth(pyfile, ref, flow, stepwise, use, edit_after)
    plan.todo(rel, lines.line(index.stmt(compute_after)), what)
    plan.function_edits.append((rel, ref, edit_after(compute_after)))


def _beside_ground_truth(pyfile, ref, flow, gt, use, edit_after):
    """Where the term reads the step's own ground truth: the first statement of its block
    after which the edited step reads nothing that some path leaves unbound."""

    before = pyfile.text()

    def safe_after(stmt) -> bool:
        after = pyfile.reparsed({ref.qualname: edit_after(stmt)}).text()
        return not violations(before, after)

    place = first_safe_place(flow, gt, safe_after)
    if place is None:
        name = gt.targets[0].id
        raise HdrfixError(
            f"{ref.qualname}: the ground-truth log residual `{name}` (line {gt.lineno}) is "
            f"built where `{use.residual}` is not bound on every path, and no later statement "
            f"of its block reads `{use.residual}` first",
            pyfile.rel,
            gt.lineno,
            hint=f"add the residual-distribution term by hand after line {gt.lineno}, where "
            f"both `{use.residual}` and `{name}` exist",
        )
    return place


def _after_residual(flow, use):
    """The smallest statement holding every assignment of the residual that reaches the
    reconstruction, in their block: after it the residual is final."""

    defs = [d.stmt for d in flow.defs_of(use.residual, use.node) if d is not flow.entry]
    return common_anchor(flow, defs)


def _top_level(flow, stmt):
    """The statement of the function's own body that holds ``stmt``."""
    current = stmt
    while True:
        _, _, owner = flow.parent[id(current)]
        if owner is flow.fn:
            return current
        current = owner


def _without_grad(flow, stmt) -> bool:
    """Whether ``stmt`` runs inside ``with torch.no_grad():`` / ``torch.inference_mode():``."""

    from hdrfix.lang.astmatch import call_name

    current = stmt
    while current is not flow.fn:
        _, _, current = flow.parent[id(current)]
        if isinstance(current, ast.With) and any(
            isinstance(item.context_expr, ast.Call)
            and call_name(item.context_expr) in {"no_grad", "inference_mode"}
            for item in current.items
        ):
            return True
    return False


def _gt_target(flow, use) -> str | None:
    """The target's log, from the ground-truth residual the step computes for its log
    supervision (``gt_delta_log = <target log> - log_img``), as source text."""

    from hdrfix.lang.astmatch import LOG_CALLS, call_name

    for stmt in flow.statements():
        value = getattr(stmt, "value", None)
        if not (
            isinstance(stmt, ast.Assign)
            and isinstance(value, ast.BinOp)
            and isinstance(value.op, ast.Sub)
            and isinstance(value.right, ast.Name)
            and value.right.id == use.log_image
        ):
            continue
        if any(call_name(c) in LOG_CALLS for c in ast.walk(value.left)):
            return ast.unparse(value.left)
    return None


def _weighted_add(a: Assignment, weights: set[str | None]) -> bool:
    """``X = X + self.<w> * ...`` with ``w`` one of ``weights``."""

    value = unparen(a.value)
    if not (
        isinstance(value, cst.BinaryOperation)
        and isinstance(value.operator, cst.Add)
        and name_of(value.left) == a.target
    ):
        return False
    return any(attr_of_self(f) in weights for f in product_factors(value.right))


def _supervision_term(
    assigns: list[Assignment], weights: set[str | None]
) -> tuple[cst.CSTNode, str] | None:
    """(the statement after which the term is added, the loss name) from the log-supervision
    add: the ``if`` directly holding it (its enable switch), or the add's own line."""

    for a in assigns:
        if not _weighted_add(a, weights):
            continue
        holder = a.chain[-2].stmt if len(a.chain) > 1 else a.chain[-1].stmt
        if not isinstance(holder, cst.If):
            holder = a.chain[-1].stmt
        return holder, a.target
    return None


def _loss_return(fn: cst.FunctionDef) -> tuple[cst.CSTNode, str]:
    """Fallback: before ``return {'loss': X, ...}``."""

    for ret in find_all(fn, cst.Return):
        assert isinstance(ret, cst.Return)
        if not isinstance(ret.value, cst.Dict):
            continue
        total = next(
            (
                name_of(e.value)
                for e in ret.value.elements
                if isinstance(e, cst.DictElement) and string_value(e.key) == "loss"
            ),
            None,
        )
        place = statement_holding(fn.body, ret)
        if total and place is not None and place.index > 0:
            return place.block.body[place.index - 1], total
    raise HdrfixError(
        "training_step: found neither the log-supervision term nor a "
        "`return {'loss': ...}` after which to add the residual-distribution term",
        hint="add the term by hand",
    )


def _target_log(fn, assigns, use, index) -> str | None:
    """``torch.log(torch.clamp(<target>, min=0) + <eps>)``, eps as in the log image's ``log``.

    The target is the second argument of the first call taking the prediction (the name
    assigned from the ``exp``) first, e.g. ``self._recon_terms(prediction, target_rgb, ...)``.
    """

    from hdrfix.lang.cst.match import call_name, call_owner, code_of, find_all, name_of, unparen

    if not isinstance(use.exp, ast.Call) or isinstance(use.exp.func, ast.Call):
        return None  # ``torch.e ** x``, ``getattr(torch, "exp")(x)``: no call to pair up
    exp_call = index.call(use.exp, use.at.stmt)
    prediction = next(
        (a.target for a in assigns if any(c is exp_call for c in find_all(a.value, cst.Call))),
        None,
    )
    logs = [
        c
        for a in assigns
        if a.target == use.log_image
        for c in find_all(a.value, cst.Call)
        if isinstance(c, cst.Call) and call_name(c) == "log" and c.args
    ]
    arg = unparen(logs[0].args[0].value) if logs else None
    if prediction is None or not (
        isinstance(arg, cst.BinaryOperation) and isinstance(arg.operator, cst.Add)
    ):
        return None
    target = next(
        (
            c.args[1].value
            for c in find_all(fn, cst.Call)
            if isinstance(c, cst.Call)
            and len(c.args) >= 2
            and c.args[1].keyword is None
            and name_of(c.args[0].value) == prediction
        ),
        None,
    )
    if target is None:
        return None
    torch = call_owner(exp_call) or "torch"
    return f"{torch}.log({torch}.clamp({code_of(target)}, min=0) + {code_of(arg.right)})"
