"""Shapes of the field's code that a site analysis by layout got wrong, each in a small trainer:
where the edit goes, what is refused, and what is listed as not handled (never skipped)."""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

import pytest
from conftest import FRAMEWORK, hdrfix, snapshot

from hdrfix.lang.assigned import violations

CONFIG = "normalization:\n  log_delta_abs_max: 16.0\n  log_delta_alpha: 1.2\n"
TRAINER = "train/patch_training_framework.py"
CLAMP = "delta_log = {t}.clamp(delta_log, min=-8.0, max=8.0)"
MODE_A = "delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max\n"

HEAD = """\
import torch


class Trainer:
    def training_step(self, batch, batch_idx):
        eps = 1e-6
        log_img = torch.log(torch.clamp(batch, min=0) + eps)
        denom = log_img.amax() - log_img.amin()
        pred = self.patch_network(log_img)
"""


def repo_with(tmp_path: Path, body: str, head: str = HEAD, config: str = CONFIG) -> Path:
    root = tmp_path / "repo"
    (root / "configs").mkdir(parents=True)
    (root / "configs/c.yaml").write_text(config)
    (root / "train").mkdir()
    (root / TRAINER).write_text(head + textwrap.indent(textwrap.dedent(body), " " * 8))
    return root


def phase1(root: Path, *extra: str):
    return hdrfix("apply", "phase1", "--repo", root, *extra)


def added(root: Path, before: str) -> list[str]:
    after = (root / TRAINER).read_text().splitlines()
    return [line.strip() for line in after if line not in before.splitlines()]


def phase1_adds(root: Path, line: str = CLAMP.format(t="torch")) -> tuple[str, str]:
    """Apply phase1, which must succeed and add to the trainer just ``line`` (one clamp, by
    default torch's): the trainer's text before and after, for the test's own checks."""
    before = (root / TRAINER).read_text()
    result = phase1(root)
    assert result.code == 0, result.err
    assert added(root, before) == [line]
    return before, (root / TRAINER).read_text()


def plan_json(root: Path, phase: str = "phase1") -> dict:
    result = hdrfix("apply", phase, "--repo", root, "--dry-run", "--format", "json")
    assert result.code == 0, result.err
    return next(p for p in json.loads(result.out)["phases"] if p["phase"] == phase)


def _with_network(root: Path) -> Path:
    """phase2 edits the network too: the fixture's, beside the small trainer."""
    (root / "net.py").write_text(
        (FRAMEWORK / "src/npu/networks/patch/patch_network.py").read_text()
    )
    return root


def status_of(root: Path, phase: str) -> dict:
    result = hdrfix("status", "--repo", root, "--format", "json")
    return next(p for p in json.loads(result.out)["phases"] if p["phase"] == phase)


def test_two_dispatch_chains_clamp_inside_the_log_arm(tmp_path: Path) -> None:
    root = repo_with(
        tmp_path,
        """\
        if self.norm_type == 'global':
            residual = pred * 2
        elif self.norm_type == 'log':
            if self.log_delta_abs_max > 0.0:
                delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
            else:
                delta_log = (self.log_delta_scale * denom) * torch.tanh(pred)
            delta_log = delta_log * self.mask_weight
        if self.norm_type == 'global':
            out = log_img + residual
        elif self.norm_type == 'log':
            Ln_hat = log_img + delta_log
            out = torch.exp(Ln_hat) - eps
        return out
        """,
    )
    before, text = phase1_adds(root)
    # inside the log arm, before the mask: indented like the Mode A/B ``if``
    assert (
        "            " + CLAMP.format(t="torch") + "\n            delta_log = delta_log *" in text
    )
    assert not violations(before, text)


HELPER = """\
import torch


class Trainer:
    def _residual(self, x, scale):
        log_img = torch.log(x + 1e-6)
        pred = self.patch_network(log_img)
        if self.log_delta_abs_max > 0.0:
            delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
        else:
            delta_log = 0.9 * torch.tanh(pred) * scale
        return delta_log, log_img

    def training_step(self, batch, batch_idx):
        delta_log, log_img = self._residual(batch, 1.0)
        return torch.exp(log_img + delta_log) - 1e-6

    def validation_step(self, batch, batch_idx):
        d, li = self._residual(batch, 1.0)
        return torch.exp(li + d)
"""


def test_helper_returning_a_tuple_is_clamped_in_the_helper(tmp_path: Path) -> None:
    root = repo_with(tmp_path, "", head=HELPER)
    _, text = phase1_adds(root)
    assert text.index(CLAMP.format(t="torch")) < text.index("return delta_log, log_img")
    assert phase1(root, "--check").code == 0


def test_hand_clamp_in_each_branch_counts_and_a_wide_one_does_not(tmp_path: Path) -> None:
    body = """\
    if self.log_delta_abs_max > 0.0:
        delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
        delta_log = torch.clamp(delta_log, min=-6.0, max=6.0)
    else:
        delta_log = 0.9 * denom * torch.tanh(pred)
        delta_log = delta_log.clamp(-8, 8)
    return torch.exp(log_img + delta_log)
"""
    root = repo_with(tmp_path, body)
    before = snapshot(root)
    assert phase1(root, "--check").code == 1  # only because of the config values
    plan = plan_json(root)
    site = [i for i in plan["items"] if "clamp delta_log" in i["what"]]
    assert [i["done"] for i in site] == [True]
    root2 = repo_with(tmp_path / "wide", body.replace("max=6.0", "max=20.0"))
    plan = plan_json(root2)
    assert [i["done"] for i in plan["items"] if "clamp" in i["what"]] == [False]
    assert any("wider than +-8" in n and ":12:" in n for n in plan["notes"]), plan["notes"]
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ("clamp", "why"),
    [
        ("delta_log = torch.clamp(delta_log, max=8.0)", "one-sided"),
        ("delta_log = torch.clamp(delta_log, min=-self.cap, max=self.cap)", "not numbers"),
    ],
)
def test_untrusted_hand_clamps_are_reported_with_their_line(
    tmp_path: Path, clamp: str, why: str
) -> None:
    body = f"""\
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    {clamp}
    return torch.exp(log_img + delta_log)
"""
    root = repo_with(tmp_path, body)
    plan = plan_json(root)
    assert any(why in n and f"{TRAINER}:11:" in n for n in plan["notes"]), plan["notes"]
    assert len([n for n in plan["notes"] if "not trusted" in n]) == 1  # said once, at its line
    assert phase1(root).code == 0
    assert phase1(root, "--check").code == 0


def test_a_clamp_after_the_exp_does_not_count(tmp_path: Path) -> None:
    body = """\
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    out = torch.exp(log_img + delta_log)
    delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)
    return out, delta_log
"""
    root = repo_with(tmp_path, body)
    plan = plan_json(root)
    assert any("after its use" in n and ":12:" in n for n in plan["notes"]), plan["notes"]
    assert [i["done"] for i in plan["items"] if "clamp" in i["what"]] == [False]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (
            "out = torch.exp(log_img + (delta_log := self.log_delta_alpha * torch.tanh(pred)))\n"
            "return torch.exp(log_img + delta_log)\n",
            ":=",
        ),
        ("f = lambda d: torch.exp(log_img + d)\nreturn f(torch.tanh(pred))\n", "lambda"),
        (
            "delta_log = self.log_delta_alpha * torch.tanh(pred)\n"
            "delta_log = 0.9 * denom * torch.tanh(pred)\n"
            "return torch.exp(log_img + delta_log)\n",
            "again before it is used",
        ),
        (
            "delta_log, w = torch.tanh(pred).chunk(2)\nreturn torch.exp(log_img + delta_log)\n",
            "unpacked from a tuple",
        ),
    ],
)
def test_shapes_not_handled_are_listed_and_keep_check_failing(
    tmp_path: Path, body: str, why: str
) -> None:
    root = repo_with(tmp_path, body)
    plan = plan_json(root)
    assert any(why in i["what"] for i in plan["not_handled"]), plan
    assert plan["state"] in ("partial", "pending")
    assert phase1(root).code == 0
    assert phase1(root, "--check").code == 1
    status = json.loads(hdrfix("status", "--repo", root, "--format", "json").out)
    assert next(p for p in status["phases"] if p["phase"] == "phase1")["state"] == "partial"


def test_annotated_assignment_and_try_except_are_handled(tmp_path: Path) -> None:
    body = """\
    try:
        delta_log: torch.Tensor = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    except RuntimeError:
        delta_log = 0.9 * denom * torch.tanh(pred)
    return torch.exp(log_img + delta_log)
"""
    root = repo_with(tmp_path, body)
    _, text = phase1_adds(root)
    lines = text.splitlines()
    clamp = next(i for i, line in enumerate(lines) if "torch.clamp(delta_log" in line)
    assert lines[clamp - 1].strip() == "delta_log = 0.9 * denom * torch.tanh(pred)"
    assert lines[clamp].startswith("        delta_log")  # after the try, not in the except
    assert phase1(root, "--check").code == 0


def test_the_files_own_torch_alias_is_used(tmp_path: Path) -> None:
    head = HEAD.replace("import torch\n", "import torch as T\n").replace("torch.", "T.")
    body = "delta_log = self.log_delta_alpha * T.tanh(pred) * self.log_delta_abs_max\n"
    root = repo_with(tmp_path, body + "return T.exp(log_img + delta_log)\n", head=head)
    phase1_adds(root, CLAMP.format(t="T"))


def test_numpy_code_gets_np_clip(tmp_path: Path) -> None:
    head = HEAD.replace("import torch\n", "import numpy as np\n").replace("torch.", "np.")
    body = "delta_log = self.log_delta_alpha * np.tanh(pred) * self.log_delta_abs_max\n"
    root = repo_with(tmp_path, body + "return np.exp(log_img + delta_log)\n", head=head)
    phase1_adds(root, "delta_log = np.clip(delta_log, -8.0, 8.0)")


def test_a_file_without_torch_gets_no_torch_edit(tmp_path: Path) -> None:
    head = HEAD.replace("import torch\n", "from torch import exp, log, tanh, clamp\n")
    head = head.replace("torch.", "")
    body = "delta_log = self.log_delta_alpha * tanh(pred) * self.log_delta_abs_max\n"
    root = repo_with(tmp_path, body + "return exp(log_img + delta_log)\n", head=head)
    before = (root / TRAINER).read_text()
    plan = plan_json(root)
    assert any("does not import torch" in i["what"] for i in plan["not_handled"]), plan
    assert phase1(root).code == 0
    assert "clamp(delta_log" not in (root / TRAINER).read_text()
    assert (root / TRAINER).read_text() == before


def test_a_method_defined_twice_edits_the_one_python_uses(tmp_path: Path) -> None:
    body = """\
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    return torch.exp(log_img + delta_log)
"""
    root = repo_with(tmp_path, body)
    text = (root / TRAINER).read_text()
    step = text[text.index("    def training_step") :]
    shadowed = step.replace("training_step(self", "training_step(self, *old").replace(
        "* self.log_delta_abs_max\n", "* self.log_delta_abs_max * 0.5\n"
    )
    (root / TRAINER).write_text(text.replace(step, shadowed + "\n" + step))
    before = (root / TRAINER).read_text()
    assert phase1(root).code == 0
    after = (root / TRAINER).read_text()
    first, second = after.split("    def training_step")[1:]
    assert "clamp(delta_log" not in first and second.count("torch.clamp(delta_log") == 1
    assert after.count("0.5") == before.count("0.5")


def test_a_ground_truth_residual_is_not_a_site(tmp_path: Path) -> None:
    body = """\
    gt_delta_log = torch.log(torch.clamp(batch, min=0) + eps) - log_img
    oracle = torch.exp(log_img + gt_delta_log)
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    return torch.exp(log_img + delta_log), oracle
"""
    root = repo_with(tmp_path, body)
    phase1_adds(root)
    assert "gt_delta_log = torch.clamp" not in (root / TRAINER).read_text()


def test_mode_b_config_is_told_it_switches_to_mode_a(tmp_path: Path) -> None:
    body = "delta_log = 0.9 * denom * torch.tanh(pred)\nreturn torch.exp(log_img + delta_log)\n"
    root = repo_with(tmp_path, body, config=CONFIG.replace("16.0", "0.0"))
    notes = plan_json(root)["notes"]
    assert any("selects Mode B" in n and "switches this config to Mode A" in n for n in notes)


def test_weight_schedule_is_named(tmp_path: Path) -> None:
    config = (
        CONFIG + "loss:\n  weight_schedule:\n    enable: true\n    log_p1: 0.9\n    log_p2: 0.3\n"
    )
    body = "delta_log = 0.9 * denom * torch.tanh(pred)\nreturn torch.exp(log_img + delta_log)\n"
    root = repo_with(tmp_path, body, config=config)
    notes = plan_json(root)["notes"]
    assert any(
        "overwrites log_supervision_weight" in n and "loss.weight_schedule.log_p2" in n
        for n in notes
    ), notes


def test_engine_refuses_a_plugin_edit_that_reads_an_unassigned_name(tmp_path: Path) -> None:
    """A deliberately broken phase (a test plugin) cannot opt out of the rule."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text(
        textwrap.dedent(
            """\
            import libcst as cst

            from hdrfix.lang.cst.edit import FunctionEdit
            from hdrfix.core.plugin import Phase, PhasePlan


            class Broken(Phase):
                name = "broken"
                summary = "reads delta_log after the whole dispatch chain"

                def plan(self, repo, options):
                    plan = PhasePlan(self.name)
                    pyfile = repo.python("train/patch_training_framework.py")
                    ref = pyfile.function("Trainer.training_step")
                    fn = pyfile.cst(ref)
                    chain = next(s for s in fn.body.body if isinstance(s, cst.If))
                    stmt = cst.parse_statement("delta_log = delta_log * 1.0")
                    plan.todo(ref.qualname, ref.line, "broken")
                    edit = FunctionEdit().insert_after(chain, stmt)
                    plan.function_edits.append((pyfile.rel, ref, edit.apply(fn)))
                    return plan
            """
        )
    )
    body = """\
    if self.norm_type == 'log':
        delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
        out = torch.exp(log_img + delta_log)
    else:
        out = pred
    return out
"""
    root = repo_with(tmp_path, body)
    before = snapshot(root)
    result = hdrfix("--plugins", plugins, "apply", "broken", "--repo", root)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert f"{TRAINER}:15:" in result.err and "'delta_log'" in result.err
    assert "not assigned on every path" in result.err
    assert snapshot(root) == before


def test_violations_sees_unbound_reads_and_undefined_names() -> None:
    before = "def f(a):\n    if a:\n        x = 1\n    return a\n"
    unbound = before.replace("    return a\n", "    y = x\n    return a\n")
    assert [(v.line, v.name, v.why) for v in violations(before, unbound)] == [
        (4, "x", "unassigned")
    ]
    inside = before.replace("        x = 1\n", "        x = 1\n        y = x\n")
    assert violations(before, inside) == []
    undefined = before.replace("    return a\n", "    y = np.clip(a, 0, 1)\n    return a\n")
    assert [(v.name, v.why) for v in violations(before, undefined)] == [("np", "undefined")]
    ast.parse(undefined)


RECONSTRUCT = """\
import torch


class Trainer:
    def _reconstruct(self, log_img, delta_log, eps=1e-6):
        Ln_hat = log_img + delta_log
        return torch.exp(Ln_hat) - eps

    def training_step(self, batch, batch_idx):
        log_img = torch.log(batch + 1e-6)
        pred = self.patch_network(log_img)
        if self.log_delta_abs_max > 0.0:
            delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
        else:
            delta_log = 0.9 * torch.tanh(pred)
        return self._reconstruct(log_img, delta_log=delta_log)
"""


def test_a_reconstruction_helper_gets_the_clamp_where_its_caller_computes(tmp_path: Path) -> None:
    root = repo_with(tmp_path, "", head=RECONSTRUCT)
    _, text = phase1_adds(root)
    assert text.index(CLAMP.format(t="torch")) > text.index("delta_log = 0.9")
    assert phase1(root, "--check").code == 0
    assert hdrfix("apply", "bound", "--repo", root).code == 0
    assert "Ln_hat = torch.clamp(Ln_hat, max=" in (root / TRAINER).read_text()


def test_a_sum_assigned_in_two_branches_is_two_reconstructions(tmp_path: Path) -> None:
    body = """\
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    if self.training:
        Ln_hat = log_img + delta_log
    else:
        Ln_hat = delta_log + log_img
    return torch.exp(Ln_hat)
"""
    root = repo_with(tmp_path, body)
    assert hdrfix("apply", "bound", "--repo", root).code == 0
    assert (root / TRAINER).read_text().count("Ln_hat = torch.clamp(Ln_hat, max=") == 2
    assert hdrfix("apply", "bound", "--repo", root, "--check").code == 0


def test_an_unnamed_residual_expression_is_listed(tmp_path: Path) -> None:
    body = "return torch.exp(log_img + self.log_delta_alpha * torch.tanh(pred))\n"
    root = repo_with(tmp_path, body)
    plan = plan_json(root)
    assert any("assign the residual to a name" in i["what"] for i in plan["not_handled"]), plan


def test_phase2_lists_a_mode_a_that_reaches_no_reconstruction(tmp_path: Path) -> None:
    """A method computing Mode A that hdrfix cannot connect to an exp would keep the old formula
    while the others change: it is listed, and --check keeps failing."""
    body = """\
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    return torch.exp(log_img + delta_log)
"""
    stats = (
        "\n    def stats(self, pred):\n"
        "        d = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max\n"
        "        return d.abs().max()\n"
    )
    root = repo_with(tmp_path, body)
    (root / TRAINER).write_text((root / TRAINER).read_text() + stats)
    _with_network(root)
    assert phase1(root).code == 0
    phase = status_of(root, "phase2")
    assert any("Trainer.stats: Mode A that reaches no" in i["what"] for i in phase["not_handled"])
    before = snapshot(root)
    result = hdrfix("apply", "phase2", "--repo", root)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert f"{TRAINER}:" in result.err and "training and validation" in result.err
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ("mode_a", "expected"),
    [
        (
            "self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max * scale"
            " * self.residual_gain",
            "delta_log = pred * scale * self.residual_gain",
        ),
        ("cap * torch.tanh(pred) * scale", "delta_log = pred * scale"),
    ],
)
def test_phase2_keeps_every_factor_but_alpha_tanh_and_the_cap(
    tmp_path: Path, mode_a: str, expected: str
) -> None:
    body = f"""\
    scale = 1.0
    cap = self.log_delta_alpha * self.log_delta_abs_max
    if self.log_delta_abs_max > 0.0:
        delta_log = {mode_a}
    else:
        delta_log = 0.9 * denom * torch.tanh(pred) * scale
    return torch.exp(log_img + delta_log)
"""
    root = repo_with(tmp_path, body)
    _with_network(root)
    result = hdrfix("apply", "phase1", "phase2", "--repo", root)
    assert result.code == 0, result.err
    text = (root / TRAINER).read_text()
    assert f"            {expected}\n" in text
    assert "delta_log = 0.9 * denom * torch.tanh(pred) * scale" in text  # Mode B stays
    assert hdrfix("apply", "phase1", "phase2", "--repo", root, "--check").code == 0


def test_phase2_refuses_a_number_beside_the_tanh(tmp_path: Path) -> None:
    body = """\
    delta_log = 1.2 * torch.tanh(pred) * self.log_delta_abs_max
    return torch.exp(log_img + delta_log)
"""
    root = _with_network(repo_with(tmp_path, body))
    assert phase1(root).code == 0
    phase = status_of(root, "phase2")
    assert any("number factor beside the tanh" in i["what"] for i in phase["not_handled"]), phase
    assert hdrfix("apply", "phase2", "--repo", root).code == 2


@pytest.mark.parametrize(
    "clamp", ["delta_log.clamp_(-8, 8)", "delta_log.clamp_(min=-6.0, max=6.0)"]
)
def test_an_in_place_hand_clamp_counts(tmp_path: Path, clamp: str) -> None:
    body = f"""\
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    {clamp}
    delta_log.mul_(self.mask_weight)
    return torch.exp(log_img + delta_log)
"""
    root = repo_with(tmp_path, body)
    plan = plan_json(root)
    assert [i["done"] for i in plan["items"] if "clamp delta_log" in i["what"]] == [True]
    before = (root / TRAINER).read_text()
    assert phase1(root).code == 0
    assert "torch.clamp(delta_log" not in (root / TRAINER).read_text()
    assert (root / TRAINER).read_text().count("clamp_(") == before.count("clamp_(") == 1


def test_an_in_place_rescale_is_followed_to_the_site(tmp_path: Path) -> None:
    body = """\
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    delta_log.mul_(self.mask_weight)
    return torch.exp(log_img + delta_log)
"""
    root = repo_with(tmp_path, body)
    _, text = phase1_adds(root)
    assert text.index("torch.clamp(delta_log") < text.index("delta_log.mul_")


def test_a_residual_gathered_over_sub_batches_is_one_site(tmp_path: Path) -> None:
    """Mode A/B per chunk in a loop, appended, then concatenated: the clamp goes after the
    concatenation, and phase2 rewrites Mode A inside the loop."""
    body = """\
    chunks = []
    for i in range(pred.shape[0]):
        if self.log_delta_abs_max > 0.0:
            delta_log = self.log_delta_alpha * torch.tanh(pred[i:i + 1]) * self.log_delta_abs_max
        else:
            delta_log = 0.9 * denom * torch.tanh(pred[i:i + 1])
        chunks.append(delta_log)
    delta_log = torch.cat(chunks, dim=0)
    return torch.exp(log_img + delta_log)
"""
    root = _with_network(repo_with(tmp_path, body))
    result = hdrfix("apply", "phase1", "phase2", "--repo", root)
    assert result.code == 0, result.err
    text = (root / TRAINER).read_text()
    assert (
        text.index("delta_log = torch.cat")
        < text.index("torch.clamp(delta_log")
        < text.index("return torch.exp")
    )
    assert text.count("torch.clamp(delta_log") == 1
    assert "delta_log = pred[i:i + 1]\n" in text  # Mode A, rewritten in the loop
    assert hdrfix("apply", "phase1", "phase2", "--repo", root, "--check").code == 0


@pytest.mark.parametrize(
    ("recon", "bounded"),
    [
        (
            "return torch.exp(log_img + delta_log).clamp(min=0)",
            "return torch.exp(torch.clamp(log_img + delta_log, max=11.089865684509277))"
            ".clamp(min=0)",
        ),
        (
            "Ln_hat: torch.Tensor = log_img + delta_log\nreturn torch.exp(Ln_hat)",
            "Ln_hat = torch.clamp(Ln_hat, max=11.089865684509277)",
        ),
    ],
)
def test_bound_on_a_chained_exp_and_an_annotated_sum(
    tmp_path: Path, recon: str, bounded: str
) -> None:
    root = repo_with(tmp_path, MODE_A + recon + "\n")
    result = hdrfix("apply", "bound", "--repo", root)
    assert result.code == 0, result.err
    assert bounded in (root / TRAINER).read_text()
    assert hdrfix("apply", "bound", "--repo", root, "--check").code == 0


def test_phase2_rewrites_mode_a_inside_a_conditional_expression(tmp_path: Path) -> None:
    body = """\
    delta_log = (
        self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
        if self.log_delta_abs_max > 0.0
        else 0.9 * denom * torch.tanh(pred)
    )
    return torch.exp(log_img + delta_log)
"""
    root = _with_network(repo_with(tmp_path, body))
    assert hdrfix("apply", "phase1", "phase2", "--repo", root).code == 0
    text = (root / TRAINER).read_text()
    assert "            pred\n            if self.log_delta_abs_max > 0.0" in text
    assert "else 0.9 * denom * torch.tanh(pred)" in text
    assert hdrfix("apply", "phase1", "phase2", "--repo", root, "--check").code == 0


@pytest.mark.parametrize(
    "head_change",
    [
        ("torch.tanh(pred) * self.log_delta_abs_max", "pred.tanh().mul(self.log_delta_abs_max)"),
        ("pred = self.patch_network(log_img)", "pred = torch.tanh(self.patch_network(log_img))"),
    ],
)
def test_phase2_refuses_mode_a_it_cannot_rewrite(tmp_path: Path, head_change) -> None:
    """A method chain, or the tanh applied where the prediction is made: rewriting the network
    would apply tanh twice there, so phase2 stops, naming the line."""
    body = """\
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    return torch.exp(log_img + delta_log)
"""
    root = _with_network(repo_with(tmp_path, body))
    text = (root / TRAINER).read_text()
    old, new = head_change
    text = text.replace(old, new)
    if "torch.tanh(self.patch_network" in text:
        text = text.replace(
            "torch.tanh(pred) * self.log_delta_abs_max", "pred * self.log_delta_abs_max"
        )
    (root / TRAINER).write_text(text)
    assert phase1(root).code == 0
    before = snapshot(root)
    result = hdrfix("apply", "phase2", "--repo", root)
    assert result.code == 2, result.err
    assert f"{TRAINER}:10:" in result.err and "by hand" in result.err
    assert snapshot(root) == before


@pytest.mark.parametrize(
    "use",
    [
        "Ln_hat = log_img + delta_log\nreturn Ln_hat.exp()",
        "Ln_hat = log_img + delta_log\nreturn torch.exp(Ln_hat.float())",
    ],
)
def test_exp_as_a_method_and_through_a_cast(tmp_path: Path, use: str) -> None:
    root = repo_with(tmp_path, MODE_A + use + "\n")
    for phases in (["phase1"], ["bound"]):
        assert hdrfix("apply", *phases, "--repo", root).code == 0
    text = (root / TRAINER).read_text()
    assert text.count("torch.clamp(delta_log") == 1 and text.count("torch.clamp(Ln_hat") == 1


FORWARD = """\
import torch


class Trainer:
    def forward(self, x):
        log_img = torch.log(x + 1e-6)
        pred = self.patch_network(log_img)
        delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
        return delta_log, log_img

    def training_step(self, batch, batch_idx):
        delta_log, log_img = self(batch)
        return torch.exp(log_img + delta_log)
"""


def test_a_residual_computed_in_forward_and_reached_through_self_call(tmp_path: Path) -> None:
    root = repo_with(tmp_path, "", head=FORWARD)
    _, text = phase1_adds(root)
    assert text.index("torch.clamp(delta_log") < text.index("return delta_log, log_img")


@pytest.mark.parametrize(
    "use",
    [
        "return torch.exp(log_img) * torch.exp(delta_log)",
        "def to_linear(a, r):\n    return torch.exp(a + r)\nreturn to_linear(log_img, delta_log)",
    ],
)
def test_a_residual_hdrfix_cannot_follow_to_its_exp_is_listed(tmp_path: Path, use: str) -> None:
    """A product of exps, a reconstruction in a nested function: never left unclamped silently."""
    root = repo_with(tmp_path, MODE_A + use + "\n")
    for phase in ("phase1", "bound"):
        plan = plan_json(root, phase)
        assert any(
            "reaches no exp(<log image> + delta_log)" in i["what"] for i in plan["not_handled"]
        )
    assert phase1(root).code == 0
    assert phase1(root, "--check").code == 1


def test_log_img_add_delta_log_is_a_reconstruction(tmp_path: Path) -> None:
    body = """\
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    Ln_hat = log_img.add(delta_log)
    return torch.exp(Ln_hat)
"""
    root = repo_with(tmp_path, body)
    assert hdrfix("apply", "phase1", "bound", "--repo", root).code == 0
    text = (root / TRAINER).read_text()
    assert text.count("torch.clamp(delta_log") == 1 and text.count("torch.clamp(Ln_hat") == 1
    assert hdrfix("apply", "phase1", "bound", "--repo", root, "--check").code == 0


STATIC = """\
import torch


class Trainer:
    @staticmethod
    def _mode_a(r, alpha, abs_max):
        return alpha * torch.tanh(r) * abs_max

    def training_step(self, batch, batch_idx):
        log_img = torch.log(batch + 1e-6)
        pred = self.patch_network(log_img)
        delta_log = self._mode_a(pred, self.log_delta_alpha, self.log_delta_abs_max)
        return torch.exp(log_img + delta_log)
"""


def test_a_helper_returning_the_residual_as_an_expression_is_clamped_in_the_caller(
    tmp_path: Path,
) -> None:
    root = repo_with(tmp_path, "", head=STATIC)
    _, text = phase1_adds(root)
    assert text.index("delta_log = self._mode_a") < text.index("torch.clamp(delta_log")
    assert phase1(root, "--check").code == 0


def test_phase3_adds_its_term_to_a_subclass_overriding_training_step(tmp_path: Path) -> None:
    """A base trainer and a subclass overriding training_step (sharing the base's __init__):
    both steps get the term, and the settings are read once, in the base's __init__."""
    from conftest import copy_tree

    root = copy_tree(FRAMEWORK, tmp_path / "fw")
    path = root / "train/patch_training_framework.py"
    text = path.read_text()
    tree = ast.parse(text)
    base = next(n for n in tree.body if isinstance(n, ast.ClassDef) and "Trainer" in n.name)
    step = next(n for n in base.body if getattr(n, "name", "") == "training_step")
    method = "".join(text.splitlines(keepends=True)[step.lineno - 1 : step.end_lineno])
    path.write_text(text + f"\n\nclass SubTrainer({base.name}):\n" + method)
    include = ("--include", "src/npu/networks/patch_inpainting.py")
    result = hdrfix("apply", "phase1", "phase3", "--repo", root, *include)
    assert result.code == 0, result.err
    patched = path.read_text()
    assert patched.count("self.residual_distribution_weight * dist_loss") == 2
    assert patched.count("self.residual_distribution_weight = float(") == 1
    assert hdrfix("apply", "phase1", "phase3", "--repo", root, *include, "--check").code == 0


def test_log1p_and_expm1_are_a_log_domain_pair(tmp_path: Path) -> None:
    head = HEAD.replace("torch.log(torch.clamp(batch, min=0) + eps)", "torch.log1p(batch)")
    body = """\
    delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
    return torch.expm1(log_img + delta_log)
"""
    root = repo_with(tmp_path, body, head=head)
    phase1_adds(root)
    assert hdrfix("apply", "bound", "--repo", root).code == 0
    assert "torch.expm1(torch.clamp(log_img + delta_log, max=" in (root / TRAINER).read_text()
