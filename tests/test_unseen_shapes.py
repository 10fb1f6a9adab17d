"""Trainer shapes of the field's kind that no fixture has, written for an adversarial review.

Each snippet is a whole (small) trainer in its own words; the tests apply phases to it through
the CLI and check the edit, and where it matters, run the patched code.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import git, hdrfix

TRAINER = "train/patch_training_framework.py"
CONFIG = "configs/colleague_training_config.yaml"

CONFIG_TEXT = """\
normalization:
  type: log
  log_epsilon: 1.0e-6
  log_delta_abs_max: 16.0
  log_delta_alpha: 1.2
  log_delta_scale: 0.9
  log_supervision_enable: true
  log_supervision_weight: 1.0
  log_supervision_type: l1
"""


def make_repo(root: Path, trainer: str) -> Path:
    (root / "train").mkdir(parents=True)
    (root / "configs").mkdir()
    (root / TRAINER).write_text(textwrap.dedent(trainer), encoding="utf-8")
    (root / CONFIG).write_text(CONFIG_TEXT, encoding="utf-8")
    git(root, "init", "-q", ".")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return root


def small_trainer(name: str, methods: str) -> str:
    """A trainer named ``name`` reading eps, the cap and alpha from its section, with a
    one-layer network, and ``methods``."""
    return SMALL_HEAD.replace("NAME", name) + methods


SMALL_HEAD = """
import torch
import torch.nn as nn


class NAME(nn.Module):
    def __init__(self, full_config):
        super().__init__()
        n = full_config.get("normalization", {})
        self.eps = float(n.get("log_epsilon", 1e-6))
        self.log_delta_abs_max = float(n.get("log_delta_abs_max", 16.0))
        self.log_delta_alpha = float(n.get("log_delta_alpha", 1.2))
        self.net = nn.Conv2d(3, 3, 1)
"""


# Settings read into annotated attributes (``self.x: float = float(norm.get(...))``).
TYPED_SETTINGS = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class TypedTrainer(nn.Module):
    def __init__(self, full_config: dict):
        super().__init__()
        norm = full_config.get("normalization", {})
        self.mode: str = str(norm.get("type", "log"))
        self.eps: float = float(norm.get("log_epsilon", 1e-6))
        self.log_delta_abs_max: float = float(norm.get("log_delta_abs_max", 16.0))
        self.log_delta_alpha: float = float(norm.get("log_delta_alpha", 1.2))
        self.sup_on: bool = bool(norm.get("log_supervision_enable", True))
        self.net = nn.Conv2d(3, 3, 1)

    def training_step(self, batch, batch_idx):
        x, target = batch["x"], batch["y"]
        loss = x.new_zeros(())
        if self.mode == "log":
            log_img = torch.log(torch.clamp(x, min=0) + self.eps)
            raw = self.net(log_img)
            delta_log = self.log_delta_alpha * torch.tanh(raw) * self.log_delta_abs_max
            out = torch.exp(log_img + delta_log) - self.eps
            if self.sup_on:
                gt = torch.log(torch.clamp(target, min=0) + self.eps) - log_img
                loss = loss + (delta_log - gt).abs().mean()
        else:
            out = x + self.net(x)
        return {"loss": loss + F.l1_loss(out, target)}
"""


def test_annotated_settings_reads_are_the_settings_mapping(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "typed", TYPED_SETTINGS)
    bound = hdrfix("apply", "bound", "--repo", repo)
    assert bound.code == 0, bound.err
    text = (repo / TRAINER).read_text(encoding="utf-8")
    # the key bound writes into the config is the one the code reads, not a literal beside it
    assert 'self.log_output_max = float(norm.get("log_output_max"' in text
    assert "max=self.log_output_max" in text
    phase3 = hdrfix("apply", "phase1", "phase3", "--repo", repo)
    assert phase3.code == 0, phase3.err
    assert "residual_distribution_weight" in (repo / TRAINER).read_text(encoding="utf-8")


# A teacher's residual under ``torch.no_grad()`` computed before the student's own.
TEACHER_FIRST = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class TeacherStudentTrainer(nn.Module):
    def __init__(self, full_config):
        super().__init__()
        n = full_config.get("normalization", {})
        self.norm_type = str(n.get("type", "log"))
        self.eps = float(n.get("log_epsilon", 1e-6))
        self.cap = float(n.get("log_delta_abs_max", 16.0))
        self.log_delta_alpha = float(n.get("log_delta_alpha", 1.2))
        self.log_sup_enable = bool(n.get("log_supervision_enable", True))
        self.log_sup_weight = float(n.get("log_supervision_weight", 1.0))
        self.student = nn.Conv2d(3, 3, 1)
        self.teacher = nn.Conv2d(3, 3, 1)

    def training_step(self, batch, batch_idx):
        x, target = batch["x"], batch["y"]
        sup = None
        if self.norm_type == "log":
            log_img = torch.log(torch.clamp(x, min=0) + self.eps)
            with torch.no_grad():
                t_res = self.log_delta_alpha * torch.tanh(self.teacher(log_img)) * self.cap
                t_img = torch.exp(log_img + t_res) - self.eps
            res_log = self.log_delta_alpha * torch.tanh(self.student(log_img)) * self.cap
            out = torch.exp(log_img + res_log) - self.eps
            if self.log_sup_enable:
                gt = torch.log(torch.clamp(target, min=0) + self.eps) - log_img
                sup = F.l1_loss(res_log, gt) + F.l1_loss(out, t_img)
        else:
            out = x + self.student(x)
        loss = F.l1_loss(out, target)
        if self.log_sup_enable and sup is not None:
            loss = loss + self.log_sup_weight * sup
        return {"loss": loss}
"""


def test_phase3_term_is_on_the_residual_that_has_gradient(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "distill", TEACHER_FIRST)
    done = hdrfix("apply", "phase1", "phase3", "--repo", repo)
    assert done.code == 0, done.err
    text = (repo / TRAINER).read_text(encoding="utf-8")
    # on the teacher's residual the term would have no gradient and train nothing
    assert "torch.sort(res_log.flatten(1)" in text
    assert "torch.sort(t_res.flatten(1)" not in text


# The section unpacked into a dataclass: every key of it must be one of the fields.
DATACLASS_SECTION = """
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class NormSection:
    type: str = "log"
    log_epsilon: float = 1e-6
    log_delta_abs_max: float = 16.0
    log_delta_alpha: float = 1.2
    log_delta_scale: float = 0.9
    log_supervision_enable: bool = True
    log_supervision_weight: float = 1.0
    log_supervision_type: str = "l1"


class SectionTrainer(nn.Module):
    def __init__(self, full_config):
        super().__init__()
        self.norm = NormSection(**full_config["normalization"])
        self.net = nn.Conv2d(3, 3, 1)

    def training_step(self, batch, batch_idx):
        x = batch["x"]
        log_img = torch.log(torch.clamp(x, min=0) + self.norm.log_epsilon)
        raw = self.net(log_img)
        delta_log = self.norm.log_delta_alpha * torch.tanh(raw) * self.norm.log_delta_abs_max
        out = torch.exp(log_img + delta_log) - self.norm.log_epsilon
        return {"loss": (out - batch["y"]).abs().mean()}
"""


def test_bound_adds_no_config_key_that_no_trainer_reads(tmp_path: Path) -> None:
    import yaml

    repo = make_repo(tmp_path / "section", DATACLASS_SECTION)
    done = hdrfix("apply", "bound", "--repo", repo)
    assert done.code == 0, done.err
    assert "max=11.089865684509277" in (repo / TRAINER).read_text(encoding="utf-8")
    # the trainer still builds from its config: the section holds only the dataclass's fields
    section = yaml.safe_load((repo / CONFIG).read_text(encoding="utf-8"))["normalization"]
    assert "log_output_max" not in section
    assert hdrfix("apply", "bound", "--repo", repo, "--check").code == 0


# The step computes the residual, masks it in place and hands it to a helper that exponentiates.
HELPER_EXP = small_trainer(
    "HelperExpTrainer",
    """
    def _reconstruct(self, log_img, d):
        return torch.expm1(log_img + d) + 1.0 - self.eps

    def training_step(self, batch, batch_idx):
        x, mask = batch["x"], batch["mask"]
        log_img = torch.log(torch.clamp(x, min=0) + self.eps)
        d = self.log_delta_alpha * torch.tanh(self.net(log_img)) * self.log_delta_abs_max
        d *= mask
        out = self._reconstruct(log_img, d)
        return {"loss": (out - batch["y"]).abs().mean()}
""",
)


def test_own_clamp_before_an_in_place_mask_is_not_called_misplaced(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "helper_exp", HELPER_EXP)
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    text = (repo / TRAINER).read_text(encoding="utf-8")
    assert text.count("d = torch.clamp(d, min=-8.0, max=8.0)") == 1
    check = hdrfix("apply", "phase1", "--repo", repo, "--check")
    assert check.code == 0
    # its own clamp, read through `d *= mask` by the helper call, is where it belongs
    assert "after its use" not in check.out + check.err


def test_trial_stops_on_a_batch_format_it_does_not_make(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("torch")
    repo = make_repo(tmp_path / "own_batches", HELPER_EXP)
    done = hdrfix(
        "trial", "--repo", repo, "--variants", "base", "--modes", "log",
        "--report", tmp_path / "report",
    )  # fmt: skip
    # before: every cell failed on KeyError, reported as "no variant breaks", exit 0
    assert done.code == 2
    assert "'mask', 'x', 'y'" in done.err and "--batch-fn" in done.err


# The Mode A / Mode B `if` inside a `try` whose handler falls back to a zero residual.
TRY_FALLBACK = small_trainer(
    "FallbackTrainer",
    """
    def training_step(self, batch, batch_idx):
        x, mask = batch["x"], batch["mask"]
        log_img = torch.log(torch.clamp(x, min=0) + self.eps)
        out = self.net(log_img)
        try:
            if self.log_delta_abs_max > 0.0:
                delta_log = self.log_delta_alpha * torch.tanh(out) * self.log_delta_abs_max
            else:
                delta_log = 0.9 * torch.tanh(out)
        except RuntimeError:
            delta_log = torch.zeros_like(log_img)
        delta_log = delta_log * mask
        pred = torch.exp(log_img + delta_log) - self.eps
        return {"loss": (pred - batch["y"]).abs().mean()}
""",
)


def test_phase1_clamp_covers_a_fallback_residual_around_the_mode_if(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "fallback", TRY_FALLBACK)
    done = hdrfix("apply", "phase1", "--repo", repo)
    # before: refused, "would still not make 'delta_log' read as phase1 wants"
    assert done.code == 0, done.err
    lines = (repo / TRAINER).read_text(encoding="utf-8").splitlines()
    clamp = lines.index("        delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)")
    # after the whole try (its handler too), before the mask
    assert lines[clamp - 1].strip() == "delta_log = torch.zeros_like(log_img)"
    assert lines[clamp + 1].strip() == "delta_log = delta_log * mask"
    assert hdrfix("apply", "phase1", "--repo", repo, "--check").code == 0


# The residual handed from forward to the steps in a dict: a shape hdrfix lists, not edits.
DICT_OUT = small_trainer(
    "DictTrainer",
    """
    def forward(self, x):
        log_img = torch.log(torch.clamp(x, min=0) + self.eps)
        delta_log = self.log_delta_alpha * torch.tanh(self.net(log_img)) * self.log_delta_abs_max
        return {"log_img": log_img, "delta_log": delta_log}

    def training_step(self, batch, batch_idx):
        outs = self(batch["x"])
        pred = torch.exp(outs["log_img"] + outs["delta_log"]) - self.eps
        return {"loss": (pred - batch["y"]).abs().mean()}
""",
)


def test_check_never_says_already_applied_while_a_site_is_left_by_hand(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "dict_out", DICT_OUT)
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0  # the config values
    check = hdrfix("apply", "phase1", "--repo", repo, "--check")
    assert check.code == 1
    assert "already applied" not in check.out + check.err
    assert "phase1: partly applied: 1 item(s) to edit by hand" in check.out + check.err
