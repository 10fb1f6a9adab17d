"""Which files a run sees: what git lists but is not there, symlinks, names that are not UTF-8."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import hdrfix, link_out, snapshot
from fielddata import CONFIG, PRESET, TRAINER

from hdrfix.core.repo import Repo
from hdrfix.kit.targets import CONFIG_MARKER, YAML_SUFFIXES
from hdrfix.lang.errors import shown

IMPL = "train/impl.py"
CLAMP = b"torch.clamp(delta_log"


def commit_all(root: Path) -> None:
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True
        )


def files_of(root: Path) -> dict[str, bytes]:
    """The working tree as the user sees it, without git's and hdrfix's own folders."""
    return {k: v for k, v in snapshot(root).items() if not k.startswith((".git", ".hdrfix"))}


def changed(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


# -- what is not there -------------------------------------------------------------------------


def test_a_tracked_file_deleted_from_the_tree_is_skipped(framework):
    commit_all(framework)
    (framework / PRESET).unlink()  # a config: its listing used to stop the run
    (framework / "src/npu/utils/residual_ops.py").unlink()  # a .py with exp( and log(
    before = files_of(framework)
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 0, result.err
    assert changed(before, files_of(framework)) == {CONFIG, TRAINER}
    assert hdrfix("revert", "phase1", "--repo", framework).code == 0
    assert files_of(framework) == before


@pytest.mark.parametrize("in_git", [False, True], ids=["walk", "git"])
def test_a_dangling_link_is_skipped(framework, in_git):
    (framework / "configs/gone.yaml").symlink_to("nowhere.yaml")
    (framework / "tools/gone.py").symlink_to("nowhere.py")
    if in_git:
        commit_all(framework)
    before = files_of(framework)
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 0, result.err
    assert changed(before, files_of(framework)) == {CONFIG, PRESET, TRAINER}


def test_a_missing_file_named_on_the_command_line_is_an_error(framework):
    (framework / "configs/gone.yaml").symlink_to("nowhere.yaml")
    before = snapshot(framework)
    for name in ("nope.yaml", "configs/gone.yaml"):
        result = hdrfix("apply", "phase1", "--repo", framework, "--config", name)
        assert result.code == 2 and f"{name}: no such file" in result.err
    assert snapshot(framework) == before


# -- symlinks ----------------------------------------------------------------------------------


@pytest.fixture
def linked_trainer(framework: Path) -> Path:
    """The trainer's usual name is a relative link to the real file, both tracked by git."""
    (framework / TRAINER).rename(framework / IMPL)
    (framework / TRAINER).symlink_to("impl.py")
    commit_all(framework)
    return framework


def test_a_link_inside_the_repo_edits_its_target_and_stays_a_link(linked_trainer):
    root = linked_trainer
    original = (root / IMPL).read_bytes()
    result = hdrfix("apply", "phase1", "--repo", root)
    assert result.code == 0, result.err
    assert os.path.islink(root / TRAINER) and os.readlink(root / TRAINER) == "impl.py"
    assert (root / IMPL).read_bytes().count(CLAMP) == 2  # edited once, not once per name
    # the change set names the real file, and only once
    assert f"wrote 3 file(s): {CONFIG}, {PRESET}, {IMPL}" in result.err
    assert hdrfix("revert", "phase1", "--repo", root).code == 0
    assert os.path.islink(root / TRAINER) and (root / IMPL).read_bytes() == original


def test_a_file_and_a_link_to_it_are_one_candidate(linked_trainer):
    repo = Repo(linked_trainer)
    assert repo.canonical(TRAINER) == IMPL
    trainers = repo.candidates((".py",), b"training_step")
    assert trainers.count(IMPL) == 1 and TRAINER not in trainers
    assert repo.source(TRAINER) is repo.source(IMPL)
    # the real file is found as the framework, not reported as log-domain code left unpatched
    result = hdrfix("status", "--repo", linked_trainer)
    assert (
        result.code == 0
        and f"-- {IMPL}:" in result.out
        and f"not patched: {IMPL}" not in result.out
    )


def test_a_link_out_of_the_repo_keeps_its_name_and_is_refused(framework, tmp_path):
    outside = tmp_path / "outside.py"
    before = link_out(framework, TRAINER, outside)
    assert Repo(framework).canonical(TRAINER) == TRAINER
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2 and f"{TRAINER}: resolves to a path outside" in result.err
    assert outside.read_bytes() == before


# -- names that are not UTF-8 ------------------------------------------------------------------

LATIN1 = b"configs/r\xe9sum\xe9.yaml"
SURROGATES = os.fsdecode(LATIN1)  # as git's listing and os.walk decode it


def latin1_config(root: Path) -> bytes:
    content = (root / CONFIG).read_bytes()
    with open(os.fsencode(root) + b"/" + LATIN1, "wb") as handle:
        handle.write(content)
    return content


@pytest.mark.parametrize("in_git", [False, True], ids=["walk", "git"])
def test_a_name_that_is_not_utf8_is_listed_and_read(framework, in_git):
    content = latin1_config(framework)
    if in_git:
        commit_all(framework)
    repo = Repo(framework)
    assert SURROGATES in repo.candidates(YAML_SUFFIXES, CONFIG_MARKER.encode())
    assert repo.source(SURROGATES).raw == content


def test_shown_prints_every_name():
    assert shown(SURROGATES) == "configs/r\\xe9sum\\xe9.yaml"
    assert shown(f"a/{SURROGATES}:21").encode("utf-8") == b"a/configs/r\\xe9sum\\xe9.yaml:21"
    assert shown("configs/caf\xe9.yaml") == "configs/caf\xe9.yaml"  # UTF-8 names are kept
    assert shown("\ud800") == "\\ud800"  # no file name holds it, still no exception


def test_a_name_that_is_not_utf8_is_applied_and_reverted(framework):
    content = latin1_config(framework)
    commit_all(framework)
    path = os.fsencode(framework) + b"/" + LATIN1
    dry = hdrfix("apply", "phase1", "--repo", framework, "--dry-run")
    assert dry.code == 0 and "+++ b/configs/r\\xe9sum\\xe9.yaml" in dry.out
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 0, result.err
    assert "configs/r\\xe9sum\\xe9.yaml" in result.err
    with open(path, "rb") as handle:
        assert handle.read() != content
    assert not list(framework.rglob("*.hdrfix-tmp"))
    status = hdrfix("status", "--repo", framework)
    assert status.code == 0 and "ok configs/r\\xe9sum\\xe9.yaml:21" in status.out
    undo = hdrfix("revert", "phase1", "--repo", framework, "--dry-run")
    assert undo.code == 0 and "--- a/configs/r\\xe9sum\\xe9.yaml" in undo.out
    assert hdrfix("revert", "phase1", "--repo", framework).code == 0
    with open(path, "rb") as handle:
        assert handle.read() == content
