"""phase3 where the ground truth is built in steps inside the log supervision, and the rule
that lets its term sit there: a read that ran proves the name bound (``hdrfix.lang.readfirst``).
"""

from __future__ import annotations

import ast
import math
import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import FRAMEWORK, VARIANTS, copy_tree, imported
from fielddata import CONFIG
from test_phase2_shapes import EVERY_MODE, applied, trains_in

from hdrfix.lang.flow import Flow

TRAINER = "train/patch_training_framework.py"

# -- the rule, on snippets ------------------------------------------------------------------------


def unbound(source: str) -> dict[int, set[str]]:
    """Per line of the function in ``source``: the locals read there that some path leaves
    unbound (lines with none are left out)."""
    fn = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(fn, ast.FunctionDef)
    flow = Flow(fn)
    found: dict[int, set[str]] = {}
    for node in flow.nodes[1:]:
        names = flow.unassigned_reads(node)
        if names:
            found.setdefault(node.line, set()).update(names)
    return found


HEAD = "def f(c):\n    if c:\n        x = 1\n"  # x: assigned on one path only (line 3)

CASES = {
    "a read protects the statements after it": (
        HEAD + "    g(x)\n    h(x)\n    k(x + 1)\n",
        {4: {"x"}},
    ),
    "in a try body: the rest of the body only, not past a handler that goes on": (
        HEAD + "    try:\n        g(x)\n        h(x)\n    except Exception:\n        pass\n"
        "    k(x)\n",
        {5: {"x"}, 9: {"x"}},
    ),
    "a handler that does not go on keeps the proof after the try": (
        HEAD + "    try:\n        g(x)\n    except Exception:\n        raise\n    k(x)\n",
        {5: {"x"}},
    ),
    "the right of and/or, the arms of a conditional, an assert prove nothing": (
        HEAD + "    if c and x:\n        pass\n    y = x if c else 0\n    assert x\n"
        "    g(x)\n    h(x)\n",
        {4: {"x"}, 6: {"x"}, 7: {"x"}, 8: {"x"}},
    ),
    "a lambda's body and a generator's element prove nothing; its first iterable does": (
        HEAD + "    f1 = lambda: x\n    g((x for _ in c))\n    h([1 for _ in x])\n    k(x)\n",
        {5: {"x"}, 6: {"x"}},
    ),
    "a with body may swallow the error: its proofs stay inside it": (
        HEAD + "    with c:\n        g(x)\n        h(x)\n    k(x)\n",
        {5: {"x"}, 7: {"x"}},
    ),
    "a finally runs after a failed read: no proof reaches it": (
        HEAD + "    try:\n        g(x)\n        h(x)\n    finally:\n        k(x)\n",
        {5: {"x"}, 8: {"x"}},
    ),
    "del undoes a proof": (
        HEAD + "    g(x)\n    h(x)\n    del x\n    k(1)\n    m(x)\n",
        {4: {"x"}, 8: {"x"}},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_read_that_ran_proves_the_name_bound(case: str) -> None:
    source, expected = CASES[case]
    assert unbound(source) == expected


def test_the_engine_accepts_a_statement_placed_after_a_read_and_not_before() -> None:
    from hdrfix.lang.assigned import violations

    old = HEAD + "    g(x)\n    return c\n"
    after_read = HEAD + "    g(x)\n    y = x * 2\n    return c\n"
    before_read = HEAD + "    y = x * 2\n    g(x)\n    return c\n"
    assert violations(old, after_read) == []
    assert [(v.line, v.name) for v in violations(old, before_read)] == [(4, "x")]


# -- phase3 on a trainer whose supervision builds the ground truth in steps ---------------------


@pytest.fixture
def stepwise(tmp_path: Path) -> Path:
    """The main fixture with the trainer of ``field_gt_in_steps``."""
    repo = copy_tree(FRAMEWORK, tmp_path / "framework")
    shutil.copy(VARIANTS / "field_gt_in_steps" / TRAINER, repo / TRAINER)
    return repo


TERM_HEAD = "if self.log_sup_enable and self.residual_distribution_loss != 'none':"
ADD = (
    "        if self.log_sup_enable and dist_loss is not None:\n"
    "            recon_loss = recon_loss + self.residual_distribution_weight * dist_loss\n"
)


def test_the_term_reads_the_steps_own_ground_truth_inside_the_supervision(stepwise: Path) -> None:
    applied(stepwise, "phase1", "phase3")
    text = (stepwise / TRAINER).read_text()
    lines = text.splitlines()
    term = [i for i, line in enumerate(lines) if line.strip() == TERM_HEAD]
    assert len(term) == 1  # the training step only
    at = term[0]
    # right after the first statement that reads delta_log, in the same block (the try body)
    assert lines[at - 1].strip() == "diff = delta_log - gt_delta_log"
    assert lines[at].startswith(" " * 20) and not lines[at].startswith(" " * 21)
    assert "try:" in lines[at - 7]
    body = "\n".join(lines[at : at + 13])
    assert "torch.sort(gt_delta_log.flatten(1), dim=1)" in body
    assert "target_delta" not in text  # no second ground truth computed beside the real one
    # added where log_sup_loss is added, under the same switch
    supervision = "            loss_dict['log_supervision'] = log_sup_loss.detach()\n"
    assert supervision + ADD in text
    assert text.count("        dist_loss = None\n") == 1


def _loss(repo: Path, torch, **normalization) -> float:
    from hdrfix.validate.fixture import build_trainer
    from hdrfix.validate.synth import make_field_batch

    with imported(repo, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(repo / CONFIG)
        config["normalization"].update(normalization)
        torch.manual_seed(0)
        model = build_trainer(trainer, config)
        return float(model.training_step(make_field_batch(2, 24, 32, seed=5), 0)["loss"].detach())


def test_the_term_changes_the_log_loss_only_where_log_supervision_is_on(stepwise: Path) -> None:
    torch = pytest.importorskip("torch")
    applied(stepwise, "phase1", "phase3")
    off = _loss(stepwise, torch, residual_distribution_loss="none")
    for loss in ("histogram", "moment", "sparsity"):
        on = _loss(stepwise, torch, residual_distribution_loss=loss)
        assert math.isfinite(on) and on > off, loss
    quiet = {"log_supervision_enable": False}
    assert _loss(stepwise, torch, residual_distribution_loss="histogram", **quiet) == _loss(
        stepwise, torch, residual_distribution_loss="none", **quiet
    )


@EVERY_MODE
def test_the_patched_step_trains_in_every_mode(stepwise: Path, mode: str, abs_max: float) -> None:
    applied(stepwise, "phase1", "phase3")
    trains_in(stepwise, mode, abs_max)
