"""A commit interrupted at any instant: the next command leaves the repo as before or as after.

The kill is real: a child process runs ``hdrfix apply`` and SIGKILLs itself at a chosen
replace, so nothing of the dying process (no ``finally``, no ``atexit``) gets to tidy up.
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
# A fork server: it imports hdrfix and plans a dry-run of a repository like the ones killed once,
# then forks a child per request. Each child runs ``hdrfix apply`` and SIGKILLs itself at the
# chosen replace: the kill is as real as from a fresh interpreter (no ``finally``, no ``atexit``),
# without starting Python and importing hdrfix and libcst for each of the 21 kills (most of this
# module's time when each kill was a new process).
KILLING_FORK_SERVER = textwrap.dedent(
    """
    import contextlib, io, json, os, signal, sys
    from hdrfix.cli import main
    from hdrfix.core import commit

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        with contextlib.suppress(SystemExit):
            main(["apply", "phase1", "--dry-run", "--repo", sys.argv[1]])

    def apply_killed_at(at, args, log):
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        calls, real = [], commit.replace

        def killing(tmp, target):
            calls.append(target)
            if len(calls) == at:
                os.kill(os.getpid(), signal.SIGKILL)
            real(tmp, target)

        commit.replace = killing
        try:
            main(args)
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        os._exit(0)

    for line in sys.stdin:
        at, args, log = json.loads(line)
        pid = os.fork()
        if pid == 0:
            apply_killed_at(at, args, log)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
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


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory):
    warm = sweep_repo(tmp_path_factory.mktemp("warm") / "fw")
    server = subprocess.Popen(
        [sys.executable, "-c", KILLING_FORK_SERVER, str(warm)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield server
    server.stdin.close()
    server.wait(timeout=60)


def kill_at(server: subprocess.Popen, root: Path, at: int) -> None:
    log = root.parent / f"killed-at-{at}.log"
    args = ["apply", "phase1", "--repo", str(root)]
    server.stdin.write(json.dumps([at, args, str(log)]) + "\n")
    server.stdin.flush()
    code = int(server.stdout.readline())
    assert code == -signal.SIGKILL, log.read_text(errors="replace")


@pytest.mark.parametrize("seed", range(20))
def test_a_kill_at_a_random_replace_is_rolled_back_or_forward(seed, states, fork_server, tmp_path):
    before, after, replaced = states
    assert replaced == SWEEP + 3 + 1  # the sweep, two configs, the trainer, the journal
    at = random.Random(seed).randint(1, replaced)
    root = sweep_repo(tmp_path / "fw")
    kill_at(fork_server, root, at)
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


def test_after_a_recovered_kill_revert_is_byte_identical_to_before(states, fork_server, tmp_path):
    before, _, replaced = states
    root = sweep_repo(tmp_path / "fw")
    kill_at(fork_server, root, replaced // 2)
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
