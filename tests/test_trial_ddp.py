"""`hdrfix trial --devices 2 --strategy ddp`: the fixture's Lightning trainer under Lightning's own
DDP, two CPU ranks on gloo. Kept small (log and global only, 2 steps of 2 frames of 32x32 per
rank): every cell starts two processes.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import FRAMEWORK, VARIANTS, copy_tree, hdrfix, plugin_dir
from test_trial import QUICK, cells

torch = pytest.importorskip("torch")
# found, not imported: importing Lightning (about 2 s) at collection cost every worker that
# runs none of these tests; `hdrfix trial` imports it where it is needed
if importlib.util.find_spec("pytorch_lightning") is None:
    pytest.skip("pytorch_lightning is not installed", allow_module_level=True)
if sys.platform == "win32":  # pragma: no cover - Lightning forks its ranks
    pytest.skip("DDP ranks are started by fork, which Windows lacks", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("one_thread")

DDP = ("--devices", "2", "--strategy", "ddp", "--modes", "log,global")

# A third-party phase that passes every static check and trains in one process, but gives the
# trainer a parameter only the log arm uses: under DDP without find_unused_parameters, every
# other mode fails ("Expected to have finished reduction ...").
LOG_ONLY_PARAMETER = """
import libcst as cst

rel = 'train/patch_training_framework.py'
pyfile = repo.python(rel)
init = pyfile.function('PatchFrameInterpolationTrainer.__init__')
step = pyfile.function('PatchFrameInterpolationTrainer.training_step')
plan.todo(rel, init.line, 'a gain parameter that only the log arm uses')

class AddParameter(cst.CSTTransformer):
    def leave_FunctionDef(self, original, updated):
        stmt = cst.parse_statement('self.log_gain = torch.nn.Parameter(torch.ones(1))\\n')
        return updated.with_changes(body=updated.body.with_changes(body=[*updated.body.body, stmt]))

class UseInLogArm(cst.CSTTransformer):
    def leave_If(self, original, updated):
        if cst.Module([]).code_for_node(updated.test) != "self.norm_type == 'log'":
            return updated
        stmt = cst.parse_statement('warped_rgb = warped_rgb * self.log_gain\\n')
        return updated.with_changes(body=updated.body.with_changes(body=[stmt, *updated.body.body]))

plan.function_edits.append((rel, init, pyfile.cst(init).visit(AddParameter())))
plan.function_edits.append((rel, step, pyfile.cst(step).visit(UseInLogArm())))
"""

# A running statistic kept as a frozen parameter and updated from each batch: DDP synchronises
# gradients, not values, so each rank's copy follows its own batches and the ranks drift apart.
RUNNING_STATISTIC = """
import libcst as cst

rel = 'train/patch_training_framework.py'
pyfile = repo.python(rel)
init = pyfile.function('PatchFrameInterpolationTrainer.__init__')
step = pyfile.function('PatchFrameInterpolationTrainer.training_step')
plan.todo(rel, init.line, 'a running mean of the input kept as a frozen parameter')

class AddStatistic(cst.CSTTransformer):
    def leave_FunctionDef(self, original, updated):
        stmt = cst.parse_statement(
            'self.input_mean = torch.nn.Parameter(torch.zeros(1), requires_grad=False)\\n'
        )
        return updated.with_changes(body=updated.body.with_changes(body=[*updated.body.body, stmt]))

class Update(cst.CSTTransformer):
    def leave_FunctionDef(self, original, updated):
        stmt = cst.parse_statement(
            "self.input_mean.data.mul_(0.9).add_(0.1 * batch['patch_input'].mean())\\n"
        )
        return updated.with_changes(body=updated.body.with_changes(body=[stmt, *updated.body.body]))

plan.function_edits.append((rel, init, pyfile.cst(init).visit(AddStatistic())))
plan.function_edits.append((rel, step, pyfile.cst(step).visit(Update())))
"""


@pytest.fixture
def lightning_repo(tmp_path: Path) -> Path:
    repo = copy_tree(VARIANTS / "field_lightning", tmp_path / "repo")
    shutil.copytree(FRAMEWORK / "src", repo / "src")
    return repo


def test_two_ranks_train_and_agree(lightning_repo, tmp_path):
    report = tmp_path / "report"
    result = hdrfix(
        "trial", "--repo", lightning_repo, "--report", report, *QUICK, *DDP,
        "--variants", "base,phase1",
    )  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads((report / "report.json").read_text())
    assert data["settings"]["devices"] == 2 and data["settings"]["strategy"] == "ddp"
    for cell in data["cells"]:
        assert cell["result"] == "trains", cell
        ranks = cell["ranks"]
        assert ranks["finished"] == [0, 1] and ranks["unused"] == [] and ranks["differ"] == []
        assert cell["steps"] == 2  # each rank its own 2 of the 4 batches
    header = next(line for line in result.out.splitlines() if line.startswith("variant"))
    assert header.split()[-3:] == ["ranks", "unused", "differ"]
    assert "under Lightning's DDP: 2 rank(s) started by fork, gloo" in result.out
    assert "Initializing distributed" not in result.out + result.err  # the ranks' banners


def test_a_parameter_one_mode_never_uses_breaks_under_ddp_only(lightning_repo, tmp_path):
    plugins = plugin_dir(tmp_path / "plugins", "loggain", LOG_ONLY_PARAMETER)
    common = ("--plugins", plugins, "trial", "--repo", lightning_repo, *QUICK)
    one = hdrfix(*common, "--report", tmp_path / "one", "--variants", "base,loggain",
                 "--modes", "log,global")  # fmt: skip
    assert one.code == 0, one.out + one.err  # in one process nothing is wrong
    result = hdrfix(*common, "--report", tmp_path / "ddp", "--variants", "base,loggain", *DDP)
    assert result.code == 1, result.out + result.err
    got = cells(json.loads((tmp_path / "ddp" / "report.json").read_text()))
    assert got["loggain", "log"]["result"] == "trains"
    assert got["base", "global"]["result"] == "trains"
    broken = got["loggain", "global"]
    assert broken["result"] == "breaks"
    assert broken["ranks"]["unused"] == ["log_gain"]
    assert "parameters that were not used" in broken["error"]["message"]  # Lightning's words
    assert (
        "loggain global: breaks: under DDP, parameter(s) unused in a step, which DDP "
        "(find_unused_parameters=False) refuses: log_gain" in result.out
    )
    # a run that sets find_unused_parameters=True tolerates it: listed, not a break
    tolerant = hdrfix(
        *common, "--report", tmp_path / "fup", "--variants", "base,loggain", "--modes", "global",
        "--devices", "2", "--find-unused-parameters",
    )  # fmt: skip
    assert tolerant.code == 0, tolerant.out + tolerant.err
    got = cells(json.loads((tmp_path / "fup" / "report.json").read_text()))
    assert got["loggain", "global"]["result"] == "trains"
    assert got["loggain", "global"]["ranks"]["unused"] == ["log_gain"]


def test_ddp_needs_a_lightning_module(framework, tmp_path):
    result = hdrfix(
        "trial", "--repo", framework, "--report", tmp_path, *QUICK, "--devices", "2",
        "--variants", "base", "--modes", "log",
    )  # fmt: skip
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1
    assert "--strategy ddp runs a LightningModule" in result.err


def test_a_ranks_traceback_is_placed_in_the_copy(tmp_path):
    """torch hands a rank's failure to this process as text: its place is read from it."""
    from hdrfix.trial.ddp import failure

    root = tmp_path / "copy"
    (root / "train").mkdir(parents=True)
    step = root / "train" / "trainer.py"
    step.write_text("x = 1\n")
    text = (
        "\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call "
        f'last):\n  File "{step}", line 7, in training_step\n    y = self.gain\n'
        '  File "/elsewhere/torch/nn/module.py", line 9, in __getattr__\n    raise\n'
        "AttributeError: 'Trainer' object has no attribute 'gain'\n"
    )
    got = failure(RuntimeError(text), root)
    assert got == {
        "type": "AttributeError",
        "message": "'Trainer' object has no attribute 'gain'",
        "at": "train/trainer.py:7",
    }


def test_a_parameter_that_drifts_apart_across_ranks_is_named(lightning_repo, tmp_path):
    plugins = plugin_dir(tmp_path / "plugins", "runmean", RUNNING_STATISTIC)
    result = hdrfix(
        "--plugins", plugins, "trial", "--repo", lightning_repo, "--report", tmp_path / "r",
        *QUICK, "--devices", "2", "--modes", "log", "--variants", "base,runmean",
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    got = cells(json.loads((tmp_path / "r" / "report.json").read_text()))
    assert got["base", "log"]["ranks"]["differ"] == []
    drifted = got["runmean", "log"]
    assert drifted["result"] == "breaks" and drifted["ranks"]["differ"] == ["input_mean"]
    assert drifted["ranks"]["finished"] == [0, 1] and drifted["error"] is None
    assert "runmean log: breaks: under DDP, parameter(s) differ across ranks: input_mean" in (
        result.out
    )


def test_a_long_list_of_parameters_is_cut_in_the_table():
    from hdrfix.trial.ddp import Ranks

    names = [f"discriminator.layer{i}.weight" for i in range(9)]
    (line,) = Ranks(2, finished=[0, 1], unused=names).problems()
    assert line.endswith("discriminator.layer5.weight and 3 more (report.json lists all)")
    assert Ranks(2, find_unused=True, finished=[0, 1], unused=names).ok
