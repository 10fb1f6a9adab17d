"""`hdrfix trial`: the user's own trainer, patched per variant, trained a few steps per mode.

Each test runs the real command on a copy of the fixture (or a field variant), as a user would;
the cells are 2 steps of 2 frames of 32x32, so a whole table takes seconds.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import FRAMEWORK, VARIANTS, copy_tree, hdrfix, plugin_dir

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_thread")

MODES = ("log", "global", "per_patch", "none")
QUICK = ("--steps", "2", "--batch", "2", "--size", "32x32", "--stub-module", "cv2")
CLAMP = 8.0
HALF_MAX = 65504.0

# A phase that passes hdrfix's static check (it reads only `self`, assigned on every path) but
# fails at run time in the non-log arms: an attribute the trainer does not have.
BREAKER = """
import libcst as cst

rel = 'train/patch_training_framework.py'
pyfile = repo.python(rel)
ref = pyfile.function('PatchFrameInterpolationTrainer.training_step')
plan.todo(rel, ref.line, 'read a missing attribute in the global and per_patch arms')
arms = ("self.norm_type == 'global'", "self.norm_type == 'per_patch'")

class Break(cst.CSTTransformer):
    def leave_If(self, original, updated):
        if cst.Module([]).code_for_node(updated.test) not in arms:
            return updated
        stmt = cst.parse_statement('_ = self.no_such_attribute\\n')
        return updated.with_changes(body=updated.body.with_changes(body=[stmt, *updated.body.body]))

plan.function_edits.append((rel, ref, pyfile.cst(ref).visit(Break())))
"""


def blown_up(module, config):
    """A --trainer-factory: the fixture trainer with its network's raw output made huge, so that
    the residual saturates whatever bounds it (as tests/test_modes.py does)."""
    from hdrfix.validate.fixture import build_trainer

    model = build_trainer(module, config)
    with torch.no_grad():
        model.patch_network.output_conv.weight.mul_(1e4)
        model.patch_network.output_conv.bias.fill_(50.0)
    return model


def trial(repo: Path, report: Path, *args: str):
    result = hdrfix("trial", "--repo", repo, "--report", report, "--format", "json", *QUICK, *args)
    data = json.loads(result.out) if result.code in (0, 1) else None
    return result, data


def cells(data: dict) -> dict[tuple[str, str], dict]:
    return {(c["variant"], c["mode"]): c for c in data["cells"]}


def test_the_fixture_trains_in_every_mode_under_the_plain_loop(framework, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` fails, installed or not
    result, data = trial(
        framework,
        tmp_path / "report",
        "--variants",
        "base,phase1,bound",
        "--modes",
        ",".join(MODES),
    )
    assert result.code == 0, result.err
    got = cells(data)
    assert set(got) == {(v, m) for v in ("base", "phase1", "bound") for m in MODES}
    for cell in got.values():
        assert cell["result"] == "trains" and cell["steps"] == 2, cell
        assert cell["runner"] == "plain"
    assert got["base", "log"]["max_exp"] > 0 and got["base", "global"]["max_exp"] is None
    assert got["base", "log"]["max_abs_delta_log"] > 0
    # --stub-module stands in for OpenCV, made unimportable by the test whether installed or not
    assert data["stubbed"] == ["cv2"] and sys.modules["cv2"] is None
    assert data["breaks"] == 0
    assert json.loads((tmp_path / "report" / "report.json").read_text()) == data


def test_a_lightning_module_runs_under_a_real_lightning_trainer(tmp_path):
    pytest.importorskip("pytorch_lightning")
    repo = copy_tree(VARIANTS / "field_lightning", tmp_path / "repo")
    shutil.copytree(FRAMEWORK / "src", repo / "src")
    result, data = trial(repo, tmp_path / "report", "--variants", "base,phase1")
    assert result.code == 0, result.err
    assert {c["runner"] for c in data["cells"]} == {"lightning"}
    assert all(c["result"] == "trains" and c["steps"] == 2 for c in data["cells"])


def test_a_phase_that_fails_in_the_non_log_arms_breaks_exactly_those_modes(framework, tmp_path):
    plugins = plugin_dir(tmp_path / "plugins", "breaker", BREAKER)
    result = hdrfix(
        "--plugins", plugins, "trial", "--repo", framework, "--report", tmp_path / "report",
        "--variants", "base,breaker", *QUICK,
    )  # fmt: skip
    assert result.code == 1, result.err
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    got = cells(data)
    broken = {m for (v, m), c in got.items() if v == "breaker" and c["result"] == "breaks"}
    assert broken == {"global", "per_patch"}
    assert got["breaker", "log"]["result"] == got["breaker", "none"]["result"] == "trains"
    error = got["breaker", "global"]["error"]
    assert error["type"] == "AttributeError" and "no_such_attribute" in error["message"]
    assert error["at"].startswith("train/patch_training_framework.py:")
    assert "breaker  global     breaks" in result.out  # the table says it too


def test_phase1_clamps_and_bound_keeps_half_range_when_the_network_blows_up(framework, tmp_path):
    result, data = trial(
        framework, tmp_path / "report", "--variants", "base,phase1,bound", "--modes", "log",
        "--trainer-factory", "test_trial:blown_up",
    )  # fmt: skip
    assert result.code == 0, result.err
    got = cells(data)
    assert got["base", "log"]["max_abs_delta_log"] > CLAMP  # so the clamp could fail
    assert got["phase1", "log"]["max_abs_delta_log"] <= CLAMP + 1e-5
    assert got["base", "log"]["overflow"] > 0
    assert got["bound", "log"]["overflow"] == 0 and got["bound", "log"]["max_exp"] <= HALF_MAX


def _one_line_error(result) -> str:
    assert result.code == 2 and result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


def test_a_trainer_factory_that_does_not_exist_is_one_line(framework, tmp_path):
    result = hdrfix(
        "trial", "--repo", framework, "--report", tmp_path, "--trainer-factory", "nosuch:make"
    )
    assert "--trainer-factory nosuch:make: cannot import nosuch" in _one_line_error(result)


def test_a_missing_import_names_the_module_and_the_flag(framework, tmp_path):
    # a module no environment has (cv2 itself is installed for the field suite)
    trainer = framework / "train" / "patch_training_framework.py"
    text = trainer.read_text(encoding="utf-8")
    trainer.write_text(text.replace("import math\n", "import math\nimport nosuchmod_hdrfix\n", 1))
    result = hdrfix("trial", "--repo", framework, "--report", tmp_path, "--variants", "base")
    line = _one_line_error(result)
    assert "module 'nosuchmod_hdrfix'" in line and "--stub-module nosuchmod_hdrfix" in line
