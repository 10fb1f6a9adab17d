"""hdrfix's records (journal, intent) are read bounded and checked field by field: any bad one
is one line naming it, exit 2, nothing written, never a traceback. And the journal's cases
of the write path: hard links, a journal that is a link, `git stash` and `git checkout`
around an apply, and a reverse diff whose context is found twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, hdrfix, snapshot
from fielddata import CONFIG, JOURNAL, TRAINER

INTENT = ".hdrfix/intent.json"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def one_line(root: Path, *command: str, says: str, names: str) -> None:
    before = snapshot(root)
    result = hdrfix(*command, "--repo", root)
    assert result.code == 2, (command, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hdrfix: error: {names}"), result.err
    assert says in result.err, result.err
    assert snapshot(root) == before


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text, encoding="utf-8")


# -- the journal --------------------------------------------------------------------------------


def test_a_pre_image_that_is_not_base64_is_one_line(framework):
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    data = json.loads((framework / JOURNAL).read_text(encoding="utf-8"))
    record = data["entries"][0]["files"][CONFIG]
    record.update(pre_image_encoding="base64", pre_image="not*base64!")
    write(framework, JOURNAL, json.dumps(data))
    one_line(framework, "revert", says="not valid base64", names=JOURNAL)


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("command", [("status",), ("revert",), ("apply", "phase1")])
def test_a_journal_nested_100000_deep_is_one_line(framework, command):
    write(framework, JOURNAL, '{"format": 2, "entries": ' + DEEP + "}")
    one_line(framework, *command, says="nested deeper than", names=JOURNAL)


@pytest.mark.parametrize(
    "field, value",
    [("time", "\x1b[2J\x1b[31mpwned"), ("hdrfix", "0.1\nhdrfix: all clear"), ("phases", ["a b"])],
)
def test_a_journal_field_that_would_print_escapes_or_lines_is_refused(framework, field, value):
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    data = json.loads((framework / JOURNAL).read_text(encoding="utf-8"))
    data["entries"][0][field] = value
    write(framework, JOURNAL, json.dumps(data))
    one_line(framework, "status", says=f"entries[0].{field}", names=JOURNAL)


def test_a_journal_over_the_size_cap_is_one_line(framework, monkeypatch):
    from hdrfix.core import records

    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    monkeypatch.setattr(records, "MAX_BYTES", 1000)
    one_line(framework, "status", says="over 1000 bytes", names=JOURNAL)


def test_a_journal_that_is_a_link_says_so_not_run_again(framework):
    (framework / ".hdrfix").mkdir()
    write(framework, "journal-kept-here.json", '{"format": 2, "entries": []}')
    (framework / JOURNAL).symlink_to("../journal-kept-here.json")
    before = snapshot(framework)
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert f"{JOURNAL}: is a symbolic link" in result.err and "again" not in result.err
    assert "../journal-kept-here.json" in result.err  # where the journal really is
    assert snapshot(framework) == before


def status_in_a_process(root: Path) -> subprocess.CompletedProcess[str]:
    """``hdrfix status`` in a process of its own, so that a read that blocks fails the test
    (after 60 s) instead of hanging the run."""
    return subprocess.run(
        [sys.executable, "-m", "hdrfix", "status", "--repo", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_does_not_block_on_a_fifo_the_journal_names(framework):
    """A record may name any path in the tree; reading a FIFO there would never return."""
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    (framework / CONFIG).unlink()
    os.mkfifo(framework / CONFIG)
    done = status_in_a_process(framework)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_a_journal_that_is_a_fifo_is_one_line_not_a_hang(framework):
    (framework / ".hdrfix").mkdir()
    os.mkfifo(framework / JOURNAL)
    done = status_in_a_process(framework)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"{JOURNAL}: is not a regular file" in done.stderr


# -- the intent ---------------------------------------------------------------------------------


def intent(root: Path, **fields: object) -> None:
    """A commit record as hdrfix writes one, for the config, with ``fields`` changed."""
    now = (root / CONFIG).read_bytes()
    entry = {
        "path": CONFIG,
        "tmp": ".colleague_training_config.yaml.0badc0de.hdrfix-tmp",
        "sha256_before": sha(now),
        "sha256_after": sha(now + b"# after\n"),
        "pre_image": base64.b64encode(now).decode(),
    }
    entry.update(fields)
    record = {"format": 1, "action": "apply phase1", "direction": "forward", "files": [entry]}
    write(root, INTENT, json.dumps(record))


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"tmp": ".."}, "tmp"),
        ({"tmp": "../../escape.hdrfix-tmp"}, "tmp"),
        ({"path": "configs", "tmp": ".configs.0badc0de.hdrfix-tmp"}, "not a regular file"),
        ({"path": "configs/a\x00b.yaml"}, "holds a NUL"),
        ({"tmp": ".colleague_training_config.yaml.0badc0de\x00.hdrfix-tmp"}, "tmp"),
        ({"pre_image": "@@@"}, "pre_image"),
        ({"sha256_after": 5}, "sha256_after"),
    ],
)
@pytest.mark.parametrize("command", [("recover",), ("apply", "phase1"), ("status",)])
def test_a_bad_intent_entry_is_one_line(framework, fields, says, command):
    intent(framework, **fields)
    one_line(framework, *command, says=says, names=INTENT)


@pytest.mark.parametrize("command", [("recover",), ("apply", "phase1"), ("status",)])
def test_an_intent_nested_100000_deep_is_one_line(framework, command):
    write(framework, INTENT, '{"format": 1, "files": ' + DEEP + "}")
    one_line(framework, *command, says="nested deeper than", names=INTENT)


# -- item 13 of the issue: the write path's odd cases -------------------------------------------


def test_a_hard_linked_config_is_refused_and_keeps_its_link(framework, tmp_path):
    """hdrfix replaces files whole (crash-safe), which would give the config a new inode and
    cut it off from its other name: refused with one line instead, the link kept."""
    other = framework / "configs/same_as_colleague.yaml"
    os.link(framework / CONFIG, other)
    one_line(framework, "apply", "phase1", says="has 2 hard links", names=CONFIG)
    assert os.stat(other).st_ino == os.stat(framework / CONFIG).st_ino


def test_stash_revert_pop_revert_takes_back_what_is_in_effect(repo):
    before = (repo / TRAINER).read_bytes()
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    git(repo, "stash")
    assert "already undone" in hdrfix("revert", "--repo", repo).err
    git(repo, "stash", "pop")
    assert "in effect" in hdrfix("status", "--repo", repo).out
    again = hdrfix("revert", "--repo", repo)
    assert again.code == 0 and "nothing to do" not in again.err, again.err
    assert "reverted journal entry #1" in again.err
    assert (repo / TRAINER).read_bytes() == before


def test_two_phases_checked_out_are_undone_like_one(repo):
    assert hdrfix("apply", "phase1", "bound", "--repo", repo).code == 0
    git(repo, "checkout", "--", ".")
    status = hdrfix("status", "--repo", repo).out
    assert "edited since" not in status
    assert status.count("undone outside hdrfix") == 2, status
    result = hdrfix("revert", "--repo", repo)
    assert result.code == 0, result.err
    assert result.err.count("already undone outside hdrfix") == 2


def test_a_reverse_hunk_whose_context_occurs_twice_is_refused_with_both_lines(framework):
    """A new test_step copied from validation_step, clamp included, above it: taking back
    hdrfix's clamp by the nearest copy would be a guess."""
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    trainer = framework / TRAINER
    text = trainer.read_text(encoding="utf-8")
    start = text.index("    def validation_step")
    end = (
        text.index("\n    def ", start + 1) + 1 if "\n    def " in text[start + 1 :] else len(text)
    )
    copy = text[start:end].replace("def validation_step", "def test_step", 1)
    trainer.write_text(text[:start] + copy + "\n" + text[start:], encoding="utf-8")
    lines = trainer.read_text(encoding="utf-8").splitlines()
    clamps = [i + 1 for i, line in enumerate(lines) if "torch.clamp(delta_log" in line]
    result = hdrfix("revert", "--force-structural", "--repo", framework)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    found = re.search(r"occur at lines (\d+) and (\d+); hdrfix does not guess", result.err)
    assert found, result.err
    # each names where the hunk (the clamp with its context lines) starts: the copy's in
    # test_step, and validation_step's own
    for named, clamp in zip(map(int, found.groups()), clamps[1:]):
        assert 0 < clamp - named < 7, (named, clamps)


@pytest.mark.parametrize("command", [("apply", "phase1", "--check"), ("status",)])
@pytest.mark.parametrize("name", [".hdrfix.toml", "pyproject.toml"])
def test_project_settings_nested_50000_deep_are_one_line(framework, command, name):
    """tomllib recurses per level of nesting: a RecursionError was a traceback and exit 1,
    which `--check` reads as "changes pending"."""
    deep = "[" * 50000 + "]" * 50000
    text = f"config = {deep}\n" if name == ".hdrfix.toml" else f"[tool.hdrfix]\nconfig = {deep}\n"
    write(framework, name, text)
    one_line(framework, *command, says="nested too deep", names=name)


@pytest.mark.parametrize("field", ["id", "apply"])
def test_a_journal_id_too_large_to_count_on_is_one_line(framework, field):
    """JSON Schema takes 1e300 for an integer, and 1e300 + 1 == 1e300: an apply numbered its
    entry like the journal's, and that journal was refused by every later revert and status,
    so the apply could no longer be taken back by hdrfix."""
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    assert hdrfix("revert", "--repo", framework).code == 0
    data = json.loads((framework / JOURNAL).read_text(encoding="utf-8"))
    data["entries"][0][field] = 1e300
    write(framework, JOURNAL, json.dumps(data))
    one_line(framework, "apply", "phase1", says=f"entries[0].{field}", names=JOURNAL)


@pytest.mark.parametrize("copies", [2, 65])
@pytest.mark.parametrize("command", [("revert",), ("status",)])
def test_a_journal_naming_a_phase_over_and_over_is_one_line(framework, copies, command):
    """revert plans every phase an entry names, once per name: 20,000 copies of "phase1"
    (200 KB of journal) kept it busy for over two minutes."""
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    data = json.loads((framework / JOURNAL).read_text(encoding="utf-8"))
    data["entries"][0]["phases"] = ["phase1"] * copies
    write(framework, JOURNAL, json.dumps(data))
    one_line(framework, *command, says="entries[0].phases", names=JOURNAL)
