"""revert cannot be fooled: it checks what it writes, reads the files as they are, and takes
back one phase, or the last apply, whenever that can be done exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FRAMEWORK, git, hdrfix, plugin_dir, snapshot
from fielddata import CONFIG, INFERENCE, JOURNAL, TRAINER


def files_of(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(root).items() if not k.startswith((".hdrfix/", ".git/"))}


def journal(root: Path) -> list[dict]:
    return json.loads((root / JOURNAL).read_text(encoding="utf-8"))["entries"]


def ok(*args: str | Path) -> str:
    result = hdrfix(*args)
    assert result.code == 0, result.err
    return result.out + result.err


# -- verify before writing --------------------------------------------------------------------


def test_a_tampered_pre_image_is_refused_before_anything_is_written(framework):
    ok("apply", "phase1", "--repo", framework)
    data = json.loads((framework / JOURNAL).read_text(encoding="utf-8"))
    data["entries"][0]["files"][TRAINER]["pre_image"] = ""
    (framework / JOURNAL).write_text(json.dumps(data), encoding="utf-8")
    before = snapshot(framework)
    result = hdrfix("revert", "phase1", "--repo", framework)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert f"the recorded pre-image of {TRAINER} (journal entry 1) does not match" in result.err
    assert snapshot(framework) == before and (framework / TRAINER).stat().st_size > 0


@pytest.mark.parametrize(
    "text, where",
    [
        ('{"entries": [{}]}', "'format' is a required property"),
        ("[1]", "[1] is not of type 'object'"),
        ('{"format": 2, "entries": [{"id": "x"}]}', "entries[0]"),
        (
            '{"format": 2, "entries": [{"id": 1, "action": "apply", "phases": ["phase1"], '
            '"time": "t", "hdrfix": "0", "files": []}]}',
            "entries[0].files: [] is not of type",
        ),
        ("{not json", "not JSON"),
    ],
)
def test_a_journal_of_the_wrong_shape_is_one_line(framework, text, where):
    (framework / ".hdrfix").mkdir()
    (framework / JOURNAL).write_text(text, encoding="utf-8")
    before = snapshot(framework)
    for command in (("status",), ("revert", "phase1"), ("apply", "phase1")):
        result = hdrfix(*command, "--repo", framework)
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, command
        assert result.err.startswith(f"hdrfix: error: {JOURNAL}") and where in result.err
    assert snapshot(framework) == before


def test_the_journal_check_holds_under_python_O(framework):
    """The shape check is a schema, not an ``assert`` that ``python -O`` would strip."""
    import sys

    (framework / ".hdrfix").mkdir()
    (framework / JOURNAL).write_text('{"format": 2, "entries": [1]}', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-O", "-m", "hdrfix", "status", "--repo", str(framework)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "entries[0]: 1 is not of type 'object'" in proc.stderr


# -- a journal the files no longer match ------------------------------------------------------


def test_an_apply_undone_by_git_and_applied_again_reverts(repo):
    before = files_of(repo)
    ok("apply", "phase1", "--repo", repo)
    git(repo, "checkout", "--", ".")
    ok("apply", "phase1", "--repo", repo)
    status = ok("status", "--repo", repo)
    assert "journal #1: phase1" in status and "undone outside hdrfix" in status
    assert "journal #2: phase1" in status and status.count("in effect") == 1
    out = ok("revert", "phase1", "--repo", repo)
    assert "#1 (phase1) was already undone outside hdrfix" in out
    assert files_of(repo) == before
    assert [bool(e.get("undone")) for e in journal(repo)] == [True, False]


def test_force_structural_reverts_what_is_really_in_effect_too(repo):
    before = files_of(repo)
    ok("apply", "phase1", "--repo", repo)
    git(repo, "checkout", "--", ".")
    ok("apply", "phase1", "--repo", repo)
    ok("revert", "phase1", "--repo", repo, "--force-structural")
    assert files_of(repo) == before


def test_a_phase_under_a_later_independent_one_reverts_alone(framework):
    before = files_of(framework)
    ok("apply", "phase1", "--repo", framework)
    ok("apply", "bound", "--repo", framework)
    bound_alone = applied_alone(framework, "bound")
    ok("revert", "phase1", "--repo", framework)
    assert files_of(framework) == bound_alone  # as if bound had been applied alone
    assert "phase1: pending" in ok("status", "--repo", framework)
    ok("revert", "bound", "--repo", framework)  # its rewritten record still reverts exactly
    assert files_of(framework) == before


def applied_alone(framework: Path, *phases: str) -> dict[str, bytes]:
    """The files of a fresh copy of the fixture, beside ``framework``, with only ``phases``."""
    other = framework.parent / "-".join(phases)
    shutil.copytree(FRAMEWORK, other, ignore=shutil.ignore_patterns("__pycache__"))
    ok("apply", *phases, "--repo", other)
    return files_of(other)


def test_a_later_phase_on_the_same_lines_names_the_order(framework, tmp_path):
    retune = f"""
        text = repo.text({CONFIG!r})
        if 'log_delta_abs_max: 5.0' in text:
            plan.done({CONFIG!r}, None, 'abs max 5')
        else:
            plan.todo({CONFIG!r}, None, 'abs max 5')
            new = text.replace('log_delta_abs_max: 6.0', 'log_delta_abs_max: 5.0')
            plan.text_edits[{CONFIG!r}] = new
    """
    plugins = plugin_dir(tmp_path / "plugins", "retune", retune)
    ok("--plugins", plugins, "apply", "phase1", "--repo", framework)
    ok("--plugins", plugins, "apply", "retune", "--repo", framework)
    before = snapshot(framework)
    refused = hdrfix("--plugins", plugins, "revert", "phase1", "--repo", framework)
    assert refused.code == 2
    assert f"{CONFIG}: retune (journal entry 2) edited the same" in refused.err
    assert "revert retune first" in refused.err and snapshot(framework) == before


# -- smaller units ----------------------------------------------------------------------------


def test_the_later_phase_of_one_apply_reverts_alone(framework):
    ok("apply", "phase1", "--repo", framework)
    after_phase1 = files_of(framework)
    ok("revert", "phase1", "--repo", framework)
    ok("apply", "phase1", "phase2", "--repo", framework, "--exclude", INFERENCE)
    refused = hdrfix("revert", "phase1", "--repo", framework)
    assert refused.code == 2 and "phase2 is applied and requires phase1" in refused.err
    ok("revert", "phase2", "--repo", framework)
    assert files_of(framework) == after_phase1
    assert [e["phases"] for e in journal(framework)][-2:] == [["phase1"], ["phase2"]]


def test_revert_without_a_phase_undoes_the_last_apply(framework):
    before = files_of(framework)
    ok("apply", "bound", "--repo", framework)
    after_bound = files_of(framework)
    ok("apply", "phase1", "phase3", "--repo", framework)
    out = ok("revert", "--repo", framework)
    assert "#2 (phase1)" in out and "#3 (phase3)" in out and files_of(framework) == after_bound
    ok("revert", "--repo", framework)
    assert files_of(framework) == before
    assert "nothing to do" in ok("revert", "--repo", framework)


def test_reverting_what_is_already_reverted_is_nothing_to_do(framework):
    ok("apply", "phase1", "--repo", framework)
    ok("revert", "phase1", "--repo", framework)
    before = snapshot(framework)
    out = ok("revert", "phase1", "--repo", framework)
    assert "nothing to do: phase1 already reverted" in out and snapshot(framework) == before


# -- line endings -----------------------------------------------------------------------------


def test_force_structural_keeps_each_lines_own_ending(framework):
    trainer = framework / TRAINER
    lines = trainer.read_bytes().split(b"\n")
    half = len(lines) // 2
    mixed = b"\r\n".join(lines[:half]) + b"\r\n" + b"\n".join(lines[half:])
    trainer.write_bytes(mixed)
    ok("apply", "phase1", "--repo", framework)
    mine = b"import torch\r\nimport math  # mine\r\n"
    trainer.write_bytes(trainer.read_bytes().replace(b"import torch\r\n", mine, 1))
    ok("revert", "phase1", "--repo", framework, "--force-structural")
    assert trainer.read_bytes() == mixed.replace(b"import torch\r\n", mine, 1)


# -- the working tree ---------------------------------------------------------------------------


def test_an_apply_onto_uncommitted_edits_says_which_files(repo):
    config = repo / CONFIG
    config.write_bytes(config.read_bytes() + b"# my note\n")
    result = hdrfix("apply", "phase1", "--repo", repo)
    assert result.code == 0
    warnings = [line for line in result.err.splitlines() if "warning" in line]
    assert warnings == [
        f"hdrfix: warning: uncommitted edits in {CONFIG} are now mixed with hdrfix's "
        "(revert takes back hdrfix's part)"
    ]
    assert config.read_bytes().endswith(b"# my note\n")


def test_a_lock_that_is_a_folder_is_one_line(framework):
    (framework / ".hdrfix/lock").mkdir(parents=True)
    before = snapshot(framework)
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2 and result.err.startswith("hdrfix: error: .hdrfix/lock: is not a file")
    assert snapshot(framework) == before


def test_a_phase_under_two_later_ones_reverts_to_what_they_alone_would_write(framework):
    ok("apply", "bound", "--repo", framework)
    ok("apply", "phase1", "phase3", "--repo", framework)
    ok("revert", "bound", "--repo", framework)
    assert files_of(framework) == applied_alone(framework, "phase1", "phase3")
