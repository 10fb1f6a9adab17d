"""What keeps planning fast (issue 20, item 1), checked by what it does rather than by a clock."""

from __future__ import annotations

import ast
import gc
from collections import Counter

from click.testing import CliRunner
from conftest import FRAMEWORK, copy_tree

from hdrfix.cli import main
from hdrfix.core.engine import plan_run
from hdrfix.core.plugin import discover
from hdrfix.core.repo import Repo
from hdrfix.lang import pyfile
from hdrfix.lang.lines import line_opcodes

INFERENCE = "src/npu/networks/patch_inpainting.py"


def test_each_text_of_a_file_is_parsed_once_across_phases_and_checks(tmp_path, monkeypatch):
    # a trainer no earlier test parsed (the cache lives as long as the process)
    root = copy_tree(FRAMEWORK, tmp_path / "repo")
    trainer = root / "train" / "patch_training_framework.py"
    trainer.write_text(trainer.read_text() + f"\n# {tmp_path.name}\n")
    whole: Counter[str] = Counter()
    tails: Counter[str] = Counter()
    real_parse = ast.parse

    def counting(source, *args, **kwargs):
        if isinstance(source, str) and "class PatchFrameInterpolationTrainer" in source:
            whole[source] += 1
        elif isinstance(source, str) and "class _:" in source and "def training_step" in source:
            tails[source] += 1  # hdrfix.lang.retree: from the first edited method on
        return real_parse(source, *args, **kwargs)

    monkeypatch.setattr(pyfile.ast, "parse", counting)
    monkeypatch.delenv("HDRFIX_CHECK_RETREE", raising=False)  # (a whole parse of its own)
    monkeypatch.chdir(root)
    run = plan_run(Repo(root), ["phase1", "phase2"], discover(), {"include": [INFERENCE]})
    assert run.changes, "both phases edit the trainer"
    # the text on disk is parsed whole, once; after phase1 and after phase2, only the tail from
    # the first edited method on, once each
    assert list(whole.values()) == [1], sorted(whole.values())
    assert len(tails) == 2
    assert set(tails.values()) == {1}, sorted(tails.values())


def test_line_opcodes_are_a_diff_of_the_whole_texts():
    old = ["a", "", "b", "", "c", "", "d"]
    new = ["a", "", "b", "x", "", "c", "", "d", "e"]
    ops = line_opcodes(old, new)
    rebuilt: list[str] = []
    for tag, i1, i2, j1, j2 in ops:
        assert (tag == "equal") == (old[i1:i2] == new[j1:j2])
        rebuilt += new[j1:j2]
    assert rebuilt == new
    assert [(t, j1, j2) for t, _, _, j1, j2 in ops if t != "equal"] == [
        ("insert", 3, 4),
        ("insert", 8, 9),
    ]


def test_a_short_lived_command_runs_without_the_cycle_collector(monkeypatch):
    """Off while the command runs, on again after it (a caller's process keeps collecting)."""
    from hdrfix import phase_flags

    seen: list[bool] = []
    real_discover = phase_flags.discover

    def watching(*args, **kwargs):
        seen.append(gc.isenabled())
        return real_discover(*args, **kwargs)

    monkeypatch.setattr("hdrfix.phase_flags.discover", watching)  # what commands call
    assert gc.isenabled()
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0, result.output
    assert seen and not any(seen)
    assert gc.isenabled()


def test_a_file_s_analysis_is_shared_by_every_checkout_holding_the_same_text(tmp_path, monkeypatch):
    """The analysis of a text is made of the text alone: a second checkout of the same files in
    the same process (a test session, a tool driving hdrfix) analyses nothing again."""
    from hdrfix.kit.logdomain import analysis

    runs: Counter[str] = Counter()
    real_run = analysis._Analyser.run

    def counting(self):
        runs[self.pyfile.source.text] += 1
        return real_run(self)

    monkeypatch.setattr(analysis._Analyser, "run", counting)
    seen = []
    for name in ("first", "second"):
        root = copy_tree(FRAMEWORK, tmp_path / name)
        trainer = root / "train" / "patch_training_framework.py"
        # a text no earlier test analysed (the cache lives as long as the process)
        trainer.write_text(trainer.read_text() + f"\n# {tmp_path.name}\n")
        result = CliRunner().invoke(main, ["status", "--repo", str(root)])
        assert result.exit_code == 0, result.output
        seen.append(sum(runs.values()))
    assert seen[0] > 0 and seen[1] == seen[0], seen
    assert set(runs.values()) == {1}
