"""Flags and answers that behave as in git and ruff: ``-q``/``-v`` before or after the command,
one "unknown phase" line with a suggestion from every command, JSON from every command."""

from __future__ import annotations

import json

import pytest
from conftest import hdrfix


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_after_the_command_means_what_it_means_before(framework, flag):
    before = hdrfix(flag, "apply", "phase1", "--check", "--repo", framework)
    after = hdrfix("apply", "phase1", "--check", flag, "--repo", framework)
    loud = hdrfix("apply", "phase1", "--check", "--repo", framework)
    assert before.code == after.code == loud.code == 1
    assert (after.out, after.err) == (before.out, before.err)
    assert len(after.err) < len(loud.err)


def test_verbose_after_the_command_means_what_it_means_before(framework):
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    before = hdrfix("-v", "apply", "phase1", "--repo", framework)
    after = hdrfix("apply", "phase1", "-v", "--repo", framework)
    plain = hdrfix("apply", "phase1", "--repo", framework)
    assert (after.out, after.err) == (before.out, before.err)
    assert after.err != plain.err


def test_quiet_wins_over_verbose_wherever_each_is_given(framework):
    quiet = hdrfix("-q", "apply", "phase1", "--check", "--repo", framework)
    both = hdrfix("-q", "apply", "phase1", "--check", "-v", "--repo", framework)
    assert (both.code, both.err) == (quiet.code, quiet.err)


@pytest.mark.parametrize("command", [["apply"], ["status"], ["revert"], ["apply", "--dry-run"]])
def test_a_mistyped_phase_gets_one_line_and_a_suggestion(repo, command):
    result = hdrfix(*command, "phse1", "--repo", repo)
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "unknown phase 'phse1'" in result.err
    assert "did you mean 'phase1'?" in result.err


def test_no_suggestion_when_nothing_is_close(repo):
    result = hdrfix("apply", "zzzzzz", "--repo", repo)
    assert result.code == 2 and "unknown phase 'zzzzzz'" in result.err
    assert "did you mean" not in result.err


def test_errors_under_format_json_are_one_json_object(repo):
    result = hdrfix("status", "phse1", "--repo", repo, "--format", "json")
    assert result.code == 2 and result.out == ""
    error = json.loads(result.err)
    assert error["exit"] == 2
    assert error["error"].startswith("unknown phase 'phse1'")
    assert "phase1" in error["hint"]


def test_dry_run_json_carries_the_diff_text_prints(repo):
    text = hdrfix("apply", "phase1", "--dry-run", "--repo", repo)
    as_json = hdrfix("apply", "phase1", "--dry-run", "--format", "json", "--repo", repo)
    data = json.loads(as_json.out)
    assert data["diff"] and data["diff"] == text.out
    assert data["written"] is False


def test_revert_speaks_json(repo):
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    before = (repo / "train/patch_training_framework.py").read_bytes()
    dry = json.loads(hdrfix("revert", "--dry-run", "--format", "json", "--repo", repo).out)
    assert dry["mode"] == "dry-run" and dry["written"] is False
    assert (repo / "train/patch_training_framework.py").read_bytes() == before
    assert "-                delta_log = torch.clamp(delta_log" in dry["diff"]
    done = json.loads(hdrfix("revert", "--format", "json", "--repo", repo).out)
    assert done["written"] is True and done["entries"] == [{"id": 1, "phases": ["phase1"]}]
    assert "train/patch_training_framework.py" in done["files"]
    again = json.loads(hdrfix("revert", "--format", "json", "--repo", repo).out)
    assert again["written"] is False and again["nothing"].startswith("nothing to do")


def test_from_a_subfolder_the_repository_is_the_working_tree(repo, monkeypatch):
    at_root = hdrfix("apply", "phase1", "--dry-run", "--repo", repo)
    monkeypatch.chdir(repo / "train")
    below = hdrfix("apply", "phase1", "--dry-run")
    assert below.code == 0 and below.out == at_root.out
    assert "+                delta_log = torch.clamp" in below.out
    said = hdrfix("-v", "status", "phase1")
    assert f"repository root: {repo}" in said.err


def test_outside_a_git_tree_one_line_names_repo(framework, monkeypatch):
    monkeypatch.chdir(framework)  # a copy without .git, under a temporary folder
    for command in (["apply", "phase1", "--dry-run"], ["status"], ["revert"]):
        result = hdrfix(*command)
        assert result.code == 2 and result.out == ""
        assert result.err.count("\n") == 1 and "not inside a git working tree" in result.err
        assert "--repo" in result.err
