"""`hdrfix trial` on trainers shaped like real ones (issue 18.5, 19.13): a constructor parameter
typed as a class of its own, a variant a phase refuses, a framework that prints, log mode with
the network blown up, manual optimisation with two optimisers, and a mode read from another key.

Each test edits a copy of the fixture in one place (its own words, not the field's) and runs
the real command, as test_trial.py does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FRAMEWORK, VARIANTS, copy_tree, hdrfix
from test_trial import CLAMP, HALF_MAX, QUICK, cells, trial

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_thread")

TRAINER = "train/patch_training_framework.py"
CONFIG = "configs/colleague_training_config.yaml"
SIGNATURE = "def __init__(self, model_config, training_config, data_config=None, full_config=None):"
CLASS_LINE = "class PatchFrameInterpolationTrainer("


def _edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{rel}: the fixture changed; {old!r} is not there once"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _add_config(repo: Path, yaml: str) -> None:
    with open(repo / CONFIG, "a", encoding="utf-8") as f:
        f.write(yaml)


def test_a_parameter_typed_as_its_own_class_keeps_its_default(framework, tmp_path):
    """``data_config: Optional[StepKnobs] = None``: the ``data:`` section is not for it."""
    _edit(
        framework, TRAINER, CLASS_LINE,
        "class StepKnobs:\n    depth = 2\n\n\n" + CLASS_LINE,
    )  # fmt: skip
    _edit(
        framework, TRAINER, SIGNATURE,
        SIGNATURE.replace("data_config=None", "data_config: Optional[StepKnobs] = None"),
    )  # fmt: skip
    _edit(framework, TRAINER, "import math\n", "import math\nfrom typing import Optional\n")
    _edit(
        framework, TRAINER, "self.data_config = data_config or {}",
        "self.knobs = data_config or StepKnobs()\n        self.data_config = {}\n"
        "        self.knob_depth = self.knobs.depth",
    )  # fmt: skip
    _add_config(framework, "data:\n  root: somewhere\n")
    result, data = trial(framework, tmp_path / "r", "--variants", "base", "--modes", "log")
    assert result.code == 0, result.err
    assert cells(data)["base", "log"]["result"] == "trains"
    assert "not a mapping" in data["constructor"]["data_config"]
    assert data["constructor"]["model_config"] == "network:"
    assert data["constructor"]["full_config"] == "the whole config"
    text = hdrfix(
        "trial", "--repo", framework, "--report", tmp_path / "t", *QUICK,
        "--variants", "base", "--modes", "log",
    )  # fmt: skip
    footer = next(line for line in text.out.splitlines() if line.startswith("constructor: "))
    assert "data_config=its default (None): Optional[StepKnobs] is not a mapping" in footer


def test_a_variant_a_phase_refuses_is_a_row_and_the_others_run(framework, tmp_path):
    """The fixture has log-domain code outside the trainer: phase2 refuses to leave it."""
    result, data = trial(
        framework, tmp_path / "r", "--variants", "base,phase1,phase1+phase2", "--modes", "log"
    )
    assert result.code == 0, result.err
    assert set(data["refused"]) == {"phase1+phase2"}
    why = data["refused"]["phase1+phase2"]
    assert "--include" in why and "\n" not in why
    got = cells(data)
    assert got["base", "log"]["result"] == got["phase1", "log"]["result"] == "trains"
    assert not any(v == "phase1+phase2" for v, _ in got)
    text = hdrfix(
        "trial", "--repo", framework, "--report", tmp_path / "t", *QUICK,
        "--variants", "base,phase1+phase2", "--modes", "log",
    )  # fmt: skip
    assert text.code == 0, text.err
    row = next(line for line in text.out.splitlines() if line.startswith("phase1+phase2 "))
    assert "refused: " in row and "--include" in row


def test_the_framework_s_own_prints_go_to_a_log_file(framework, tmp_path):
    _edit(
        framework, TRAINER, "import math\n",
        "import math\nimport sys\nprint('BANNER-AT-IMPORT')\n"
        "print('WARNING-AT-IMPORT', file=sys.stderr)\n",
    )  # fmt: skip
    _edit(
        framework, TRAINER, "self.data_config = data_config or {}",
        "self.data_config = data_config or {}\n        print('TABLE-IN-INIT')",
    )  # fmt: skip
    report = tmp_path / "report"
    result = hdrfix(
        "trial", "--repo", framework, "--report", report, *QUICK,
        "--variants", "base", "--modes", "log,global",
    )  # fmt: skip
    assert result.code == 0, result.err
    for mark in ("BANNER-AT-IMPORT", "WARNING-AT-IMPORT", "TABLE-IN-INIT"):
        assert mark not in result.out and mark not in result.err
    log = (report / "framework.log").read_text(encoding="utf-8")
    assert log.count("TABLE-IN-INIT") == 2  # a trainer per cell
    assert "BANNER-AT-IMPORT" in log and "WARNING-AT-IMPORT" in log
    assert f"the framework's own output: {report / 'framework.log'}" in result.out
    assert "base log:" in result.err  # trial's own progress still reaches the terminal


def test_log_mode_blows_up_the_network_so_an_unbounded_residual_shows(framework, tmp_path):
    """No --trainer-factory: trial itself makes the output layer answer huge in log mode."""
    result, data = trial(
        framework, tmp_path / "r", "--variants", "base,phase1,bound", "--modes", "log,global"
    )
    assert result.code == 0, result.err
    got = cells(data)
    assert got["base", "log"]["max_abs_delta_log"] > CLAMP
    assert got["base", "log"]["overflow"] > 0
    assert got["phase1", "log"]["max_abs_delta_log"] <= CLAMP + 1e-5
    assert got["bound", "log"]["overflow"] == 0 and got["bound", "log"]["max_exp"] <= HALF_MAX
    assert data["blown_up"] == "patch_network.output_conv"
    # the other modes train the network as built
    assert got["base", "global"]["losses"][0] < 1e3


MANUAL = """
    def training_step(self, batch, batch_idx):
        first, second = self.optimizers()
        out = self._automatic_step(batch, batch_idx)
        first.zero_grad()
        second.zero_grad()
        self.manual_backward(out['loss'])
        first.step()
        second.step()
        return out

    def configure_optimizers(self):
        params = list(self.parameters())
        return [torch.optim.Adam(params[:1], lr=1e-3), torch.optim.Adam(params[1:], lr=1e-3)]

"""


def test_manual_optimisation_with_two_optimisers_counts_its_steps(tmp_path):
    pytest.importorskip("pytorch_lightning")
    repo = copy_tree(VARIANTS / "field_lightning", tmp_path / "repo")
    shutil.copytree(FRAMEWORK / "src", repo / "src")
    _edit(repo, TRAINER, "def training_step(self,", "def _automatic_step(self,")
    _edit(repo, TRAINER, "def configure_optimizers(self):", "def _one_optimiser(self):")
    _edit(
        repo, TRAINER, "        self.data_config = data_config or {}\n",
        "        self.data_config = data_config or {}\n"
        "        self.automatic_optimization = False\n",
    )  # fmt: skip
    _edit(repo, TRAINER, "    def _one_optimiser(self):", MANUAL + "    def _one_optimiser(self):")
    result, data = trial(
        repo, tmp_path / "r", "--variants", "base,phase1", "--modes", "log,global", "--steps", "3"
    )
    assert result.code == 0, result.err
    for cell in data["cells"]:
        assert cell["runner"] == "lightning"
        assert cell["result"] == "trains" and cell["steps"] == 3, cell
        assert len(cell["losses"]) == 3


SCHEDULES = """
    def configure_optimizers(self):
        optimiser = torch.optim.Adam(self.parameters(), lr=1e-3)
        warm = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=10)
        return {'optimizer': optimiser, 'lr_scheduler': [
            {'scheduler': warm, 'interval': 'step'}, {'scheduler': cosine, 'interval': 'epoch'}]}

    def _one_optimiser(self):"""


def test_a_schedule_list_lightning_rejects_trains_with_the_first_optimiser_noted(tmp_path):
    """An older Lightning took a list of scheduler configs; this one raises inside fit."""
    pytest.importorskip("pytorch_lightning")
    repo = copy_tree(VARIANTS / "field_lightning", tmp_path / "repo")
    shutil.copytree(FRAMEWORK / "src", repo / "src")
    _edit(repo, TRAINER, "    def configure_optimizers(self):", SCHEDULES)
    result, data = trial(repo, tmp_path / "r", "--variants", "base,phase1", "--modes", "log")
    assert result.code == 0, result.err
    for cell in data["cells"]:
        assert cell["result"] == "trains" and cell["steps"] == 2, cell
        assert any(
            "Lightning rejects what configure_optimizers returns" in n for n in cell["notes"]
        )


def test_a_mode_read_from_another_key_is_set_there(framework, tmp_path):
    """The trainer reads its mode from ``data.norm_mode``: setting ``normalization.type`` would
    run one path in every "mode"."""
    _edit(
        framework, TRAINER, "self.norm_type = str(norm_unified.get('type', default_norm)).lower()",
        "self.norm_type = str(self.data_config.get('norm_mode', default_norm)).lower()",
    )  # fmt: skip
    _add_config(framework, "data:\n  norm_mode: per_patch\n")
    result, data = trial(
        framework, tmp_path / "r", "--variants", "base,phase1", "--modes", "log,global"
    )
    assert result.code == 0, result.err
    assert data["mode_key"] == ["data", "norm_mode"] and data["mode_attribute"] == "norm_type"
    got = cells(data)
    for variant in ("base", "phase1"):
        assert got[variant, "log"]["max_exp"] is not None  # the log arm ran: it exponentiates
        assert got[variant, "global"]["max_exp"] is None


def test_a_mode_the_trainer_does_not_take_is_not_claimed(framework, tmp_path):
    """The mode comes from a method trial cannot follow, and is always 'global': only the global
    cells ran what they say; the others are "mode not set", and nothing breaks."""
    _edit(
        framework, TRAINER, "self.norm_type = str(norm_unified.get('type', default_norm)).lower()",
        "self.norm_type = self._chosen_mode()",
    )  # fmt: skip
    _edit(
        framework, TRAINER, "    def configure_optimizers(self):",
        "    def _chosen_mode(self):\n        return 'global'\n\n"
        "    def configure_optimizers(self):",
    )  # fmt: skip
    result, data = trial(
        framework, tmp_path / "r", "--variants", "base,phase1", "--modes", "log,global,none"
    )
    assert result.code == 0, result.err
    got = cells(data)
    for variant in ("base", "phase1"):
        assert got[variant, "global"]["result"] == "trains"
        for mode in ("log", "none"):
            cell = got[variant, mode]
            assert cell["result"] == "mode not set: the trainer's norm_type is 'global'", cell
            assert cell["steps"] == 0 and cell["trains"] is False
    assert data["breaks"] == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["cells"] == data["cells"]
