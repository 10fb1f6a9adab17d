"""phase3 — the review's optional distribution loss on the log residual (its Phase 3).

In every target config, under ``normalization``::

    residual_distribution_loss: histogram     # histogram | moment | sparsity | none
    residual_distribution_weight: 0.5

and in the trainer: ``__init__`` reads both keys next to its other settings, and the training
step adds the term right after the log-supervision term::

    total_loss = total_loss + self.log_supervision_weight * log_loss
    if self.residual_distribution_loss != 'none':
        ...  # dist_loss from delta_log and target_delta = target_log - log_img
        total_loss = total_loss + self.residual_distribution_weight * dist_loss

- ``histogram`` (the review's Option A): L1 between the sorted predicted and the sorted target
  log residuals of each sample; ``moment`` (Option B): |mean - mean'| + |var - var'| per
  sample, averaged over the batch; ``sparsity`` (Option C): mean |delta_log|. The same
  definitions and operation order as ``hdrfix.nn.losses`` (see there for why per sample).
- The loss is chosen at run time by the config string, so a user switches it (or turns it off
  with ``none``) by editing the config, without patching again. The inserted code is plain
  torch: the framework must not need hdrfix to run.
- Only the training step gets the term; validation keeps measuring what it measured.
- There is no KL option, on purpose: the review shows that KL divergence is wrong here. The log
  residuals are signed values, not a probability distribution; a softmax to make them one
  throws away the sign and the magnitude ([-5, 5, -2, 2] becomes [0.0009, 0.993, 0.002,
  0.005]), and flattening treats pixels as i.i.d. samples. ``--loss kl`` is refused by the CLI.
- The term sits where the log-supervision term is added, so the target's log (``target_log``)
  is at hand. In the field that is inside ``if self.log_supervision_enable:``: while log
  supervision is off the term is off too, and the plan says so.

Where the training step has no log-supervision term, the term goes before the ``return`` of
the loss dict, with the target's log computed like the log image (same eps), the target being
the second argument of the reconstruction-loss call that takes the prediction first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hdrfix.core.plugin import Option, Phase, PhasePlan
from hdrfix.core.repo import Repo

if TYPE_CHECKING:  # the module stays light: `hdrfix list` imports it
    import libcst as cst

    from hdrfix.edit.cst.match import Assignment
    from hdrfix.edit.pyfile import FunctionRef, PyFile

LOSSES = ("histogram", "moment", "sparsity", "none")
DEFAULT_LOSS = "histogram"
DEFAULT_WEIGHT = 0.5
LOSS_KEY = "residual_distribution_loss"
WEIGHT_KEY = "residual_distribution_weight"
SUPERVISION_WEIGHT_KEY = "log_supervision_weight"
SUPERVISION_ENABLE_KEY = "log_supervision_enable"

# The same operations, in the same order, as hdrfix.nn.losses (so the values agree to the bit).
# {q} is the file's quote; the other fields are names from the training step, or fresh ones.
TERM = """\
if {enable}self.{loss_key} != {q}none{q}:
    {target_delta} = {target_log} - {log_img}
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


def _valid_loss(value: Any) -> bool:
    return isinstance(value, str) and value in LOSSES


def _valid_weight(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


class Phase3(Phase):
    name = "phase3"
    summary = "residual-distribution loss on delta_log (histogram|moment|sparsity|none), weighted"
    requires = ("phase1",)
    options = (
        Option("loss", f"residual distribution loss (default {DEFAULT_LOSS})", choices=LOSSES),
        Option("weight", f"weight of that loss (default {DEFAULT_WEIGHT})", float),
    )

    def plan(self, repo: Repo, options: Mapping[str, Any]) -> PhasePlan:
        from hdrfix.core.errors import HdrfixError
        from hdrfix.edit.configedit import plan_values, section_value
        from hdrfix.edit.cst.settings import (
            Read,
            attr_reading,
            find_settings,
            kept_values,
            plan_reads,
        )
        from hdrfix.edit.targets import config_files, framework_file

        loss = options.get("loss")
        weight = options.get("weight")
        if loss is not None and not _valid_loss(loss):
            raise HdrfixError(
                f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}",
                hint="KL divergence is not offered: residuals are not a "
                "probability distribution (see the review)",
            )
        if weight is not None and not _valid_weight(weight):
            raise HdrfixError(f"--weight must be a number >= 0, got {weight!r}")
        keep = {
            k: v
            for k, v, given in ((LOSS_KEY, _valid_loss, loss), (WEIGHT_KEY, _valid_weight, weight))
            if given is None
        }
        values = {
            LOSS_KEY: loss or DEFAULT_LOSS,
            WEIGHT_KEY: float(weight if weight is not None else DEFAULT_WEIGHT),
        }

        plan = PhasePlan(self.name)
        for rel in config_files(repo, options):
            plan_values(plan, repo, [rel], kept_values(repo, rel, values, keep))
            if section_value(repo, rel, "log_supervision_enable") is False:
                plan.notes.append(
                    f"{rel}: log_supervision_enable is false; the residual-distribution term "
                    "is added with the log-supervision term, so it has no effect until that "
                    "is enabled"
                )

        rel = framework_file(repo, options)
        pyfile = repo.python(rel)
        read_by: set[str] = set()
        for ref in _training_steps(repo, rel):
            assert ref.class_name is not None
            init_ref = _init_of(pyfile, ref.class_name)
            settings = find_settings(pyfile.cst(init_ref)) if init_ref else None
            if init_ref is None or settings is None:
                raise HdrfixError(
                    f"{ref.qualname}: its class's __init__ does not read "
                    "log_delta_abs_max from a settings mapping",
                    rel,
                    ref.line,
                    hint="phase3 adds its two settings next to that read",
                )
            owner = init_ref.class_name
            assert owner is not None
            if owner not in read_by:  # a subclass shares its base's __init__
                read_by.add(owner)
                plan_reads(
                    plan,
                    repo,
                    rel,
                    owner,
                    [Read(LOSS_KEY, "str", "none"), Read(WEIGHT_KEY, "float", 0.0)],
                )
            weights = {
                SUPERVISION_WEIGHT_KEY,
                attr_reading(pyfile.cst(init_ref), SUPERVISION_WEIGHT_KEY),
            }
            enable = attr_reading(pyfile.cst(init_ref), SUPERVISION_ENABLE_KEY)
            _plan_term(plan, rel, pyfile, ref, settings.quote, weights, enable)
        return plan


def _training_steps(repo: Repo, rel: str) -> list[FunctionRef]:
    """The framework's ``training_step`` methods (those reaching a log-domain site if several:
    a base trainer and a subclass overriding the step each get the term)."""
    from hdrfix.core.errors import HdrfixError
    from hdrfix.edit.logdomain import analyse

    pyfile = repo.python(rel)
    steps = [ref for ref in pyfile.functions if ref.name == "training_step" and ref.class_name]
    if len(steps) > 1:
        using = {u.ref.qualname for _, u in analyse(pyfile).uses()}
        steps = [ref for ref in steps if ref.qualname in using]
    if not steps:
        raise HdrfixError(
            "found no training_step method with a log-domain reconstruction",
            rel,
            hint="point at the trainer with --framework",
        )
    return steps


def _init_of(pyfile: PyFile, class_name: str, seen: frozenset[str] = frozenset()):
    """The ``__init__`` a class of the file runs: its own, or a base's defined in the file."""
    import ast

    own = pyfile.function(f"{class_name}.__init__")
    if own is not None or class_name in seen:
        return own
    node = pyfile.classes.get(class_name)
    for base in node.bases if node is not None else []:
        if isinstance(base, ast.Name) and base.id in pyfile.classes:
            found = _init_of(pyfile, base.id, seen | {class_name})
            if found is not None:
                return found
    return None


def _plan_term(
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
    import libcst as cst

    from hdrfix.core.errors import HdrfixError
    from hdrfix.edit.cst.edit import FunctionEdit
    from hdrfix.edit.cst.index import cst_index
    from hdrfix.edit.cst.lines import FunctionLines
    from hdrfix.edit.cst.match import assignments, fresh_name
    from hdrfix.edit.logdomain import analyse

    fn = pyfile.cst(ref)
    lines = FunctionLines(ref, fn)
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
    site, use = uses[0]
    if site.torch is None:
        raise HdrfixError(
            "the trainer does not import torch", rel, hint="add `import torch` at its top"
        )
    index = cst_index(pyfile, ref)
    flow = analysis.flows[ref.qualname]
    compute_after = _after_residual(flow, use)
    target_log = _gt_target(flow, use) or _target_log(fn, assigns, use, index)
    supervision = _supervision_term(assigns, weights)
    if supervision is not None:
        add_after, total = supervision
    else:
        add_after, total = _loss_return(fn)
    if target_log is None:
        raise HdrfixError(
            f"{ref.qualname}: found no ground-truth log residual nor the target of the "
            "reconstruction loss to match the residual's distribution against",
            rel,
            ref.line,
            hint="add the term by hand",
        )
    fresh = {name: fresh_name(fn, name) for name in TEMPORARIES}
    dist = fresh.pop("dist_loss")
    switch = f"self.{enable} and " if enable else ""
    term = TERM.format(
        q=quote,
        enable=switch,
        loss_key=LOSS_KEY,
        torch=site.torch,
        delta=use.residual,
        log_img=use.log_image,
        target_log=target_log,
        dist=dist,
        **fresh,
    )
    add = ADD.format(enable=switch, dist=dist, total=total, weight_key=WEIGHT_KEY)
    top = _top_level(flow, compute_after)
    edit = (
        FunctionEdit()
        .insert_before(index.stmt(top), cst.parse_statement(f"{dist} = None"))
        .insert_after(index.stmt(compute_after), cst.parse_statement(term))
        .insert_after(add_after, cst.parse_statement(add))
    )
    plan.todo(rel, lines.line(index.stmt(compute_after)), what)
    plan.function_edits.append((rel, ref, edit.apply(fn)))


def _after_residual(flow, use):
    """The smallest statement holding every assignment of the residual that reaches the
    reconstruction, in their block: after it the residual is final."""
    from hdrfix.edit.logdomain import common_anchor

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


def _gt_target(flow, use) -> str | None:
    """The target's log, from the ground-truth residual the step computes for its log
    supervision (``gt_delta_log = <target log> - log_img``), as source text."""
    import ast

    from hdrfix.edit.astmatch import LOG_CALLS, call_name

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
    import libcst as cst

    from hdrfix.edit.cst.match import attr_of_self, name_of, product_factors, unparen

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
    import libcst as cst

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
    import libcst as cst

    from hdrfix.core.errors import HdrfixError
    from hdrfix.edit.cst.match import find_all, name_of, statement_holding, string_value

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
    import libcst as cst

    from hdrfix.edit.cst.match import call_name, call_owner, code_of, find_all, name_of, unparen

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
