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

import ast
from collections.abc import Mapping
from typing import Any

from hdrfix.core.plugin import Phase, PhasePlan
from hdrfix.core.repo import Repo
from hdrfix.halffloat import in_float32
from hdrfix.kit.configedit import plan_values, section_value
from hdrfix.kit.logdomain import analyse
from hdrfix.kit.settingplan import plan_reads
from hdrfix.kit.settingreads import Read, kept_values, settings_mapping
from hdrfix.kit.targets import config_files, framework_file
from hdrfix.lang.astmatch import attr_of_self, product_factors
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.pyfile import FunctionRef, PyFile
from hdrfix.lang.stmtlines import placed_statements
from hdrfix_plugins.phase3.keys import (
    DEFAULT_LOSS,
    DEFAULT_WEIGHT,
    LOSS_KEY,
    LOSSES,
    SUPERVISION_ENABLE_KEY,
    SUPERVISION_WEIGHT_KEY,
    WEIGHT_KEY,
)


def _valid_loss(value: Any) -> bool:
    return isinstance(value, str) and value in LOSSES


def _valid_weight(value: Any) -> bool:
    # a config's .inf or 1e39 is no weight a float32 loss can take
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return is_number and value >= 0 and in_float32(float(value))


def plan(phase: Phase, repo: Repo, options: Mapping[str, Any]) -> PhasePlan:
    """The plan of phase3 (declared in ``hdrfix_plugins.phase3``). ``loss`` and ``weight``
    come checked by their Options; a config's own values are checked here before kept."""
    loss = options.get("loss")
    weight = options.get("weight")
    keep = {
        k: v
        for k, v, given in ((LOSS_KEY, _valid_loss, loss), (WEIGHT_KEY, _valid_weight, weight))
        if given is None
    }
    values = {
        LOSS_KEY: loss or DEFAULT_LOSS,
        WEIGHT_KEY: float(weight if weight is not None else DEFAULT_WEIGHT),
    }

    plan = PhasePlan(phase.name)
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
        if init_ref is None or settings_mapping(pyfile, pyfile.node(init_ref)) is None:
            raise _no_settings(ref, rel)
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
        added = _weighted_add_line(pyfile, pyfile.node(ref))
        if added is not None:
            plan.done(rel, added, f"{ref.qualname}: add {WEIGHT_KEY} * residual-distribution loss")
            continue
        from hdrfix.kit.trainersetting import attr_reading, find_settings
        from hdrfix_plugins.phase3.term import plan_term

        init = pyfile.cst(init_ref)
        settings = find_settings(init)
        if settings is None:  # settings_mapping reads as libcst does; should they ever differ
            raise _no_settings(ref, rel)
        weights = {SUPERVISION_WEIGHT_KEY, attr_reading(init, SUPERVISION_WEIGHT_KEY)}
        enable = attr_reading(init, SUPERVISION_ENABLE_KEY)
        plan_term(plan, rel, pyfile, ref, settings.quote, weights, enable)
    return plan


def _no_settings(ref: FunctionRef, rel: str) -> HdrfixError:
    return HdrfixError(
        f"{ref.qualname}: its class's __init__ does not read "
        "log_delta_abs_max from a settings mapping",
        rel,
        ref.line,
        hint="phase3 adds its two settings next to that read",
    )


def _weighted_add_line(pyfile: PyFile, step: ast.FunctionDef | ast.AsyncFunctionDef) -> int | None:
    """The line of the step's ``X = X + self.<weight> * ...``: the term is in. Read with
    ``ast``, as :func:`hdrfix_plugins.phase3.term.plan_term` reads it with libcst (which a run
    that finds the term there does not import)."""
    for placed in placed_statements(pyfile, step):
        stmt = placed.stmt
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
            continue
        target, value = stmt.targets[0], stmt.value
        if (
            isinstance(target, ast.Name)
            and isinstance(value, ast.BinOp)
            and isinstance(value.op, ast.Add)
            and isinstance(value.left, ast.Name)
            and value.left.id == target.id
            and any(attr_of_self(f) == WEIGHT_KEY for f in product_factors(value.right))
        ):
            return placed.line
    return None


def _training_steps(repo: Repo, rel: str) -> list[FunctionRef]:
    """The framework's ``training_step`` methods (those reaching a log-domain site if several:
    a base trainer and a subclass overriding the step each get the term)."""

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
