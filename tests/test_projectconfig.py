"""The repository's own settings (.hdrfix.toml or [tool.hdrfix]): every run sees one target set."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import FRAMEWORK, hdrfix, snapshot

TRAINER = "train/patch_training_framework.py"
INFERENCE = "src/npu/networks/patch_inpainting.py"


def test_an_included_file_restored_by_git_fails_check_without_repeating_include(framework):
    (framework / ".hdrfix.toml").write_text(f'include = ["{INFERENCE}"]\n')
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    assert "torch.clamp(delta_log" in (framework / INFERENCE).read_text()
    assert hdrfix("apply", "phase1", "--repo", framework, "--check").code == 0
    (framework / INFERENCE).write_bytes((FRAMEWORK / INFERENCE).read_bytes())  # git checkout
    assert hdrfix("apply", "phase1", "--repo", framework, "--check").code == 1


def test_phase_options_come_from_the_file_and_flags_win(framework):
    (framework / "pyproject.toml").write_text(
        '[project]\nname = "fw"\n\n[tool.hdrfix.phase1]\nclamp = 6\n'
    )
    dry = hdrfix("apply", "phase1", "--repo", framework, "--dry-run").out
    assert "torch.clamp(delta_log, min=-6.0, max=6.0)" in dry
    flagged = hdrfix("apply", "phase1", "--repo", framework, "--dry-run", "--clamp", "5").out
    assert "torch.clamp(delta_log, min=-5.0, max=5.0)" in flagged


def test_hdrfix_toml_wins_over_pyproject(framework):
    (framework / "pyproject.toml").write_text("[tool.hdrfix.phase1]\nclamp = 6\n")
    (framework / ".hdrfix.toml").write_text("[phase1]\nclamp = 7\n")
    dry = hdrfix("apply", "phase1", "--repo", framework, "--dry-run").out
    assert "min=-7.0, max=7.0" in dry and "max=6.0" not in dry


@pytest.mark.parametrize(
    "text, message",
    [
        ("includes = ['a.py']\n", ".hdrfix.toml:1: unknown hdrfix setting 'includes'"),
        ("framework = 3\n", ".hdrfix.toml:1: framework must be a path, got 3"),
        ("\ninclude = ['a.py', 3]\n", ".hdrfix.toml:2: include must be a list of paths"),
        ("phase1 = 3\n", ".hdrfix.toml:1: phase1 must be a table of options, got 3"),
        ("\n[phase1]\nclmap = 6\n", ".hdrfix.toml:3: phase1 has no option 'clmap'"),
        ("[phase3]\nloss = 'kl'\n", ".hdrfix.toml:2: phase3.loss must be histogram | moment"),
        ("[phase1\n", ".hdrfix.toml:1: is not valid TOML"),
    ],
)
def test_a_bad_setting_is_one_line_naming_file_and_line(framework, text, message):
    (framework / ".hdrfix.toml").write_text(text)
    before = snapshot(framework)
    for command in ("apply", "status"):
        args = (command, "phase1") if command == "apply" else (command,)
        result = hdrfix(*args, "--repo", framework)
        assert result.code == 2 and len(result.err.splitlines()) == 1
        assert result.err.startswith(f"hdrfix: error: {message}")
    assert snapshot(framework) == before


def test_help_does_not_import_the_schema_checker(tmp_path):
    # jsonschema is for repositories that have a config file; --help must stay light
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hdrfix", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0 and "hdrfix" in run.stdout
    assert "jsonschema" not in run.stderr
