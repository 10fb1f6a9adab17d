"""A commit interrupted at any instant: the next command leaves the repo as before or as after.

The kill is real: a subprocess runs ``hdrfix apply`` and SIGKILLs itself at a chosen replace,
so nothing of the dying process (no ``finally``, no ``atexit``) gets to tidy up.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FRAMEWORK, hdrfix, snapshot

from hdrfix.core import commit

SWEEP = 12  # extra configs, so that a kill lands among many replaces
KILL_AT_REPLACE = textwrap.dedent(
    """
    import os, signal, sys
    from hdrfix.core import commit
    from hdrfix.cli import main

    at, calls, real = int(sys.argv[1]), [], commit.replace

    def killing(tmp, target):
        calls.append(target)
        if len(calls) == at:
            os.kill(os.getpid(), signal.SIGKILL)
        real(tmp, target)

    commit.replace = killing
    main(sys.argv[2:])
    """
)


def sweep_repo(root: Path) -> Path:
    shutil.copytree(FRAMEWORK, root, ignore=shutil.ignore_patterns("__pycache__"))
    config = (root / "configs/colleague_training_config.yaml").read_bytes()
    for i in range(SWEEP):
        (root / f"configs/sweep/run_{i:02d}.yaml").parent.mkdir(exist_ok=True)
        (root / f"configs/sweep/run_{i:02d}.yaml").write_bytes(config)
    return root


def files_of(root: Path) -> dict[str, bytes]:
    """The repository's files as a user sees them: hdrfix's lock file, and the .gitignore
    that keeps it out of git, are not among them."""
    local = {".hdrfix/lock", ".hdrfix/.gitignore"}
    return {k: v for k, v in snapshot(root).items() if k not in local}


def without_journal(tree: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in tree.items() if not k.startswith(".hdrfix/")}


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> tuple[dict[str, bytes], dict[str, bytes], int]:
    """The files before and after an uninterrupted apply, and how many replaces it makes."""
    root = sweep_repo(tmp_path_factory.mktemp("clean") / "fw")
    before = files_of(root)
    assert hdrfix("apply", "phase1", "--repo", root).code == 0
    after = files_of(root)
    replaced = sum(1 for k in after if after[k] != before.get(k))
    return before, after, replaced


def kill_at(root: Path, at: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT_REPLACE, str(at), "apply", "phase1", "--repo", str(root)],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


@pytest.mark.parametrize("seed", range(20))
def test_a_kill_at_a_random_replace_is_rolled_back_or_forward(seed, states, tmp_path):
    before, after, replaced = states
    assert replaced == SWEEP + 3 + 1  # the sweep, two configs, the trainer, the journal
    at = random.Random(seed).randint(1, replaced)
    root = sweep_repo(tmp_path / "fw")
    kill_at(root, at)
    assert (root / commit.INTENT).exists()  # the dead run left its intent

    result = hdrfix("recover", "--repo", root)  # (apply and revert also recover first)
    assert result.code == 0
    now = files_of(root)
    if at == 1:  # killed before the first replace: nothing of it may show
        assert now == before and "rolled back" in result.err
    else:
        assert without_journal(now) == without_journal(after) and "rolled forward" in result.err
        entries = json.loads(now[".hdrfix/journal.json"])["entries"]
        assert [e["phases"] for e in entries] == [["phase1"]]
    assert not [p for p in root.rglob("*") if p.name.endswith(".hdrfix-tmp")]
    assert not (root / commit.INTENT).exists()


def test_after_a_recovered_kill_revert_is_byte_identical_to_before(states, tmp_path):
    before, _, replaced = states
    root = sweep_repo(tmp_path / "fw")
    kill_at(root, replaced // 2)
    applied = hdrfix("apply", "phase1", "--repo", root)
    assert applied.code == 0 and "rolled forward" in applied.err
    assert "already applied" in applied.err  # the recovered commit is the whole apply
    assert hdrfix("revert", "phase1", "--repo", root).code == 0
    assert without_journal(files_of(root)) == without_journal(before)


def faulty_replace(monkeypatch, faults: dict[int, BaseException]) -> None:
    """``commit.replace`` raising ``faults[n]`` at its n-th call, and replacing otherwise."""
    real = commit.replace
    calls: list[Path] = []

    def replace(tmp: Path, target: Path) -> None:
        calls.append(target)
        if len(calls) in faults:
            raise faults[len(calls)]
        real(tmp, target)

    monkeypatch.setattr(commit, "replace", replace)


def test_a_kill_during_the_roll_back_is_finished_backwards(tmp_path, monkeypatch):
    """An interrupted roll back must never be finished forward by the next run."""
    root = sweep_repo(tmp_path / "fw")
    before = files_of(root)
    # the fifth replace fails, and the roll back dies at its second restore
    faulty_replace(monkeypatch, {5: OSError(5, "Input/output error"), 7: SystemExit("killed")})
    assert hdrfix("apply", "phase1", "--repo", root).code != 0
    monkeypatch.undo()
    record = json.loads((root / commit.INTENT).read_text())
    assert record["direction"] == "back"
    result = hdrfix("recover", "--repo", root)
    assert "rolled back" in result.err and files_of(root) == before


def test_ctrl_c_at_a_replace_restores_every_file(tmp_path, monkeypatch):
    root = sweep_repo(tmp_path / "fw")
    before = files_of(root)
    faulty_replace(monkeypatch, {6: KeyboardInterrupt()})
    result = hdrfix("apply", "phase1", "--repo", root)
    assert result.code == 1 and "Aborted" in result.err  # click's answer to Ctrl-C
    assert files_of(root) == before  # no intent, no temp file, no journal
