"""`.hdrfix/` is untrusted input (docs/threat-model.md): a planted intent or journal, or a
`.hdrfix` that is a link, never writes or runs anything outside the plan.

Each attack is refused with one line and exit 2, and nothing changes anywhere: the whole tree,
`.git/` included, and the folder outside it are hashed before and after.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import git, hdrfix
from fielddata import CONFIG, JOURNAL, TRAINER

INTENT = ".hdrfix/intent.json"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hashes(*roots: Path) -> dict[str, str]:
    """Every file, link and folder under ``roots`` (``.git/`` too), by content or target."""
    seen = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = Path(folder, name)
                if path.is_symlink():
                    seen[str(path)] = "-> " + os.readlink(path)
                elif path.is_file():
                    seen[str(path)] = sha(path.read_bytes())
                else:
                    seen[str(path)] = "folder"
    return seen


@pytest.fixture
def repo(repo: Path) -> Path:
    """The committed fixture, beside a folder outside it that must stay empty."""
    (repo.parent / "outside").mkdir()
    return repo


def refused(root: Path, *command: str, says: str) -> None:
    """``command`` exits 2 with one line holding ``says``, and nothing anywhere changed."""
    outside = root.parent / "outside"
    before = hashes(root, outside)
    result = hdrfix(*command, "--repo", root)
    assert result.code == 2, (command, result.err)
    assert len(result.err.strip().splitlines()) == 1 and says in result.err, result.err
    assert "Traceback" not in result.err
    assert hashes(root, outside) == before, command


def plant_intent(root: Path, files: list[dict]) -> None:
    (root / ".hdrfix").mkdir(exist_ok=True)
    record = {"format": 1, "action": "apply phase1", "direction": "back", "files": files}
    (root / INTENT).write_text(json.dumps(record), encoding="utf-8")


def rolled_back_to(root: Path, rel: str, pre_image: bytes | None) -> dict:
    """An intent entry that a roll back would answer by putting ``pre_image`` at ``rel``
    (deleting it for None): the file is at its recorded after-hash now."""
    now = (root / rel).read_bytes()
    name = rel.rsplit("/", 1)[-1]
    return {
        "path": rel,
        "tmp": f".{name}.0badc0de.hdrfix-tmp",
        "sha256_before": None if pre_image is None else sha(pre_image),
        "sha256_after": sha(now),
        "pre_image": None if pre_image is None else base64.b64encode(pre_image).decode(),
    }


# -- 1. a planted intent ---------------------------------------------------------------------

NO_WRITE = [("apply", "phase1", "--check"), ("apply", "phase1", "--dry-run"), ("status",)]
WRITE = [("apply", "phase1"), ("revert",), ("recover",)]


@pytest.mark.parametrize("command", NO_WRITE + WRITE)
def test_an_intent_that_would_set_core_fsmonitor_is_refused(repo, command):
    config = (repo / ".git/config").read_bytes()
    marker = repo.parent / "outside" / "ran"
    poisoned = config + f'[core]\n\tfsmonitor = "touch {marker}; false"\n'.encode()
    plant_intent(repo, [rolled_back_to(repo, ".git/config", poisoned)])
    refused(repo, *command, says=INTENT)
    assert not marker.exists()


@pytest.mark.parametrize("command", NO_WRITE + WRITE)
def test_an_intent_with_a_null_pre_image_deletes_nothing(repo, command):
    """A roll back of a file that "did not exist before" deletes it: never for a record's say."""
    plant_intent(repo, [rolled_back_to(repo, "README.md", None)])
    refused(repo, *command, says=INTENT)


@pytest.mark.parametrize("command", NO_WRITE)
def test_commands_that_promise_not_to_write_do_not_recover_even_a_real_intent(repo, command):
    """Even a well-formed intent of hdrfix's own kind is only reported: its finishing command
    is named, and the exit code is 2, so `--check` never reads a half-done commit as 0 or 1."""
    text = (repo / CONFIG).read_bytes()
    entry = rolled_back_to(repo, CONFIG, text.replace(b"16.0", b"6.0", 1))
    plant_intent(repo, [entry])
    refused(repo, *command, says="hdrfix recover --repo")


@pytest.mark.parametrize("command", WRITE)
def test_an_untracked_intent_that_hdrfix_did_not_write_is_not_acted_on(repo, command):
    """A record unpacked from a tarball or written by `git apply`: git does not track it, its
    path and kind pass, and the file is at its recorded after-hash; only its seal betrays it."""
    setup = repo / "setup.py"
    setup.write_text("from setuptools import setup\nsetup()\n", encoding="utf-8")
    git(repo, "add", "setup.py")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "setup")
    plant_intent(repo, [rolled_back_to(repo, "setup.py", b"import os  # planted\n")])
    refused(repo, *command, says="seal")


def test_a_sealed_intent_is_acted_on_only_in_the_tree_it_was_written_for(repo, tmp_path):
    """hdrfix's own record of a killed run, copied into another checkout, is refused there."""
    from hdrfix.core.seal import seal

    text = (repo / CONFIG).read_bytes()
    plant_intent(repo, [rolled_back_to(repo, CONFIG, text.replace(b"16.0", b"6.0", 1))])
    record = json.loads((repo / INTENT).read_text(encoding="utf-8"))
    record["seal"] = seal(tmp_path / "elsewhere", record)
    (repo / INTENT).write_text(json.dumps(record), encoding="utf-8")
    refused(repo, "recover", says="seal")
    record["seal"] = seal(repo, record)
    (repo / INTENT).write_text(json.dumps(record), encoding="utf-8")
    result = hdrfix("recover", "--repo", repo)
    assert result.code == 0 and "rolled back" in result.err, result.err
    assert (repo / CONFIG).read_bytes() == text.replace(b"16.0", b"6.0", 1)


def test_an_intent_that_git_tracks_is_not_acted_on(repo):
    text = (repo / CONFIG).read_bytes()
    plant_intent(repo, [rolled_back_to(repo, CONFIG, text.replace(b"16.0", b"6.0", 1))])
    git(repo, "add", "-f", INTENT)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pr")
    refused(repo, "apply", "phase1", says="tracked by git")


def test_an_intent_naming_a_kind_of_file_its_phases_never_write_is_refused(repo):
    """README.md is inside the tree and a regular file, but phase1 writes only Python and YAML."""
    plant_intent(repo, [rolled_back_to(repo, "README.md", b"# replaced\n")])
    refused(repo, "recover", says="a kind of file `hdrfix apply phase1` does not write")


def test_hdrfix_writes_a_gitignore_that_keeps_its_local_state_out_of_git(repo):
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    untracked = git(repo, "status", "--porcelain", "--untracked-files=all")
    assert "?? .hdrfix/journal.json" in untracked
    assert "lock" not in untracked and "intent" not in untracked and ".gitignore" not in untracked


# -- 2 and 3. a planted journal ---------------------------------------------------------------


def journal_naming(root: Path, rel: str, pre_image: bytes, now: bytes, diff: str = "") -> None:
    """A journal whose one phase1 entry says it wrote ``now`` at ``rel`` over ``pre_image``."""
    record = {
        "sha256_before": sha(pre_image),
        "sha256_after": sha(now),
        "pre_image_encoding": "utf-8",
        "pre_image": pre_image.decode(),
        "reverse_diff": diff,
    }
    entry = {
        "id": 1,
        "apply": 1,
        "action": "apply",
        "phases": ["phase1"],
        "time": "2026-12-01T10:00:00+0000",
        "hdrfix": "0.1.0",
        "files": {rel: record},
    }
    (root / ".hdrfix").mkdir(exist_ok=True)
    (root / JOURNAL).write_text(json.dumps({"format": 2, "entries": [entry]}), encoding="utf-8")


@pytest.mark.parametrize("rel", [".git/config", ".git/HEAD"])
def test_a_journal_entry_for_a_git_file_is_not_reverted(repo, rel):
    journal_naming(repo, rel, b"ref: refs/heads/planted\n", (repo / rel).read_bytes())
    refused(repo, "revert", says="inside a git directory")


@pytest.mark.parametrize(
    "rel, says",
    [
        ("../outside.txt", "not a normalised relative path"),
        ("ABSOLUTE", "an absolute path"),
        (".git/hooks/pre-commit", "inside a git directory"),
        ("src/.git/config", "inside a git directory"),
        (".GIT/config", "inside a git directory"),  # the same folder on a case-blind disk
        (".g\u200cit/hooks/pre-commit", "inside a git directory"),  # HFS+ drops U+200C
        (".", "not a normalised relative path"),
        (".hdrfix/lock", "hdrfix's own state folder"),
    ],
)
def test_journal_keys_out_of_the_plan_are_refused_with_force_structural(repo, rel, says):
    rel = str(repo.parent / "outside" / "abs.txt") if rel == "ABSOLUTE" else rel
    hook = "#!/bin/sh\ntouch ran\n"
    diff = f"--- a/x\n+++ b/x\n@@ -0,0 +1,2 @@\n+{hook.replace(chr(10), chr(10) + '+')[:-1]}"
    journal_naming(repo, rel, hook.encode(), b"something else\n", diff)
    refused(repo, "revert", "--force-structural", says=says)
    refused(repo, "revert", "phase1", says=says)
    refused(repo, "status", says=says)


def test_a_core_reverse_hunk_never_reaches_git_config(repo):
    config = (repo / ".git/config").read_text()
    assert "[core]\n" in config
    hunk = "@@ -1,1 +1,2 @@\n [core]\n+\tfsmonitor = touch ran\n"
    journal_naming(repo, ".git/config", b"[core]\n", b"[core]\n\tbare = true\n", hunk)
    refused(repo, "revert", "--force-structural", says="inside a git directory")
    assert not (repo / "ran").exists()


def test_a_journal_key_that_is_a_link_into_git_is_refused(repo):
    (repo / "configs/linked.yaml").symlink_to("../.git/config")
    journal_naming(repo, "configs/linked.yaml", b"a: 1\n", (repo / ".git/config").read_bytes())
    refused(repo, "revert", says="configs/linked.yaml")


def test_a_journal_naming_a_kind_of_file_phase1_never_writes_is_refused(repo):
    """Inside the tree and regular, but phase1 writes Python and YAML: not README.md."""
    journal_naming(repo, "README.md", b"# planted\n", (repo / "README.md").read_bytes())
    refused(repo, "revert", says="a kind of file phase1 does not write")


@pytest.mark.parametrize(
    "rel", [".github/workflows/ci.yml", "configs/data/dataset.yaml", "src/npu/__init__.py"]
)
def test_a_journal_naming_a_file_phase1_does_not_target_is_refused(repo, rel):
    """Of the right kind, in a folder hdrfix lists, but not a file phase1 plans for when run
    again now: a CI workflow, a config without the normalization section, a package init."""
    if not (repo / rel).exists():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("name: ci\n", encoding="utf-8")
    journal_naming(repo, rel, b"planted: true\n", (repo / rel).read_bytes())
    refused(repo, "revert", says="is not among the files phase1 targets here")
    refused(repo, "revert", "--force-structural", says="is not among the files phase1 targets")


def test_a_revert_plans_with_the_target_options_the_apply_recorded(repo):
    """--config narrows phase1 to one file; the entry records it, and revert plans with it."""
    before = (repo / CONFIG).read_bytes()
    assert hdrfix("apply", "phase1", "--config", str(repo / CONFIG), "--repo", repo).code == 0
    entry = json.loads((repo / JOURNAL).read_text(encoding="utf-8"))["entries"][0]
    assert entry["targets"] == {"config": [CONFIG]}
    result = hdrfix("revert", "--repo", repo)
    assert result.code == 0, result.err
    assert (repo / CONFIG).read_bytes() == before


@pytest.mark.parametrize("command", [("revert",), ("revert", "--force-structural")])
def test_a_journal_entry_for_a_venv_sitecustomize_is_refused(repo, command):
    """A .py file inside the tree, but where no phase looks: writing it would run code at
    every start of the environment's interpreter."""
    rel = ".venv/lib/python3.11/site-packages/sitecustomize.py"
    (repo / rel).parent.mkdir(parents=True)
    (repo / rel).write_text("# the venv's own\n", encoding="utf-8")
    journal_naming(repo, rel, b"import os; os.system('touch ran')\n", (repo / rel).read_bytes())
    refused(repo, *command, says="lies in .venv/, a folder hdrfix never looks in")


# -- 4. .hdrfix as a link out -----------------------------------------------------------------


@pytest.mark.parametrize("command", [("apply", "phase1"), ("revert",), ("status",)])
def test_a_hdrfix_folder_that_links_out_is_refused_before_anything_is_written(repo, command):
    (repo / ".hdrfix").symlink_to(repo.parent / "outside", target_is_directory=True)
    refused(repo, *command, says=".hdrfix: is a symbolic link")
    assert not list((repo.parent / "outside").iterdir())


def test_a_phase_that_plans_a_write_into_git_is_refused(repo, tmp_path):
    """The gate holds for the installed phases' plans too: a phase's bug writes no .git."""
    from conftest import plugin_dir

    body = """
        plan.todo('.git/description', None, 'x')
        plan.text_edits['.git/description'] = 'planted\\n'
    """
    plugins = plugin_dir(tmp_path / "plugins", "rogue", body, writes=("description",))
    before = hashes(repo)
    result = hdrfix("--plugins", plugins, "apply", "rogue", "--repo", repo)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert hashes(repo) == before


# -- a config in a pull request that would hang --check ----------------------------------------


@pytest.mark.parametrize("alias", ["", "  other: *a\n"])
def test_a_config_nested_20000_flow_levels_deep_is_one_line_in_seconds(repo, alias):
    """ruamel's scanner checks every open flow level at each token: walking the whole stream to
    report its deepest point took minutes at 20,000 levels (and hours for a megabyte of
    ``[``); with an alias, the alias-bomb walk did the same before any other check."""
    import time

    deep = "[" * 20000 + "]" * 20000
    (repo / "configs/deep.yaml").write_text(
        f"normalization:\n  log_delta_abs_max: &a 16.0\n  x: {deep}\n{alias}", encoding="utf-8"
    )
    started = time.monotonic()
    refused(repo, "apply", "phase1", "--check", says="more than 500 levels deep")
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("command", WRITE)
def test_a_tracked_intent_temporary_file_is_not_deleted(repo, command):
    """A commit may carry ``.hdrfix/intent.json.hdrfix-tmp``; recovery used to delete it as
    its own leftover, a write to a file no phase targets."""
    (repo / ".hdrfix").mkdir()
    (repo / f"{INTENT}.hdrfix-tmp").write_text("a file of the pull request\n", encoding="utf-8")
    git(repo, "add", "-f", f"{INTENT}.hdrfix-tmp")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pr")
    refused(repo, *command, says="tracked by git")


def test_a_reverse_diff_of_more_hunks_than_any_phase_writes_is_refused(repo):
    """Each hunk is looked for in the whole file: 20,000 hunks in the journal for a trainer
    the pull request grew to 20,000 lines kept `revert --force-structural` busy for 41 s,
    and the cost grows with the square (hours at 100,000)."""
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    trainer = repo / TRAINER
    text = trainer.read_text(encoding="utf-8")
    trainer.write_text(text + "TABLE = [\n" + "".join(f"    {i},\n" for i in range(1001)) + "]\n")
    first = len(text.splitlines()) + 2
    hunks = "".join(f"@@ -{first + i},1 +{first + i},1 @@\n     {i},\n" for i in range(1001))
    data = json.loads((repo / JOURNAL).read_text(encoding="utf-8"))
    data["entries"][0]["files"][TRAINER]["reverse_diff"] += hunks
    (repo / JOURNAL).write_text(json.dumps(data), encoding="utf-8")
    refused(repo, "revert", "--force-structural", says="hunks, more than the 1000 hdrfix takes")


@pytest.mark.parametrize("kind", ["link", "folder"])
def test_a_gitignore_hdrfix_may_not_write_neither_stops_an_apply_nor_is_written(repo, kind):
    """``.hdrfix/.gitignore`` is a convenience: a link or a folder in its place stopped every
    apply with "nothing was changed", after the lock file had been created."""
    (repo / ".hdrfix").mkdir()
    if kind == "link":
        (repo / ".hdrfix/.gitignore").symlink_to("../README.md")
    else:
        (repo / ".hdrfix/.gitignore/sub").mkdir(parents=True)
    readme = (repo / "README.md").read_bytes()
    result = hdrfix("apply", "phase1", "--repo", repo)
    assert result.code == 0, result.err
    assert (repo / "README.md").read_bytes() == readme
    assert (repo / ".hdrfix/.gitignore").is_symlink() == (kind == "link")


def test_revert_plans_a_phase_once_however_many_entries_name_it(repo, monkeypatch):
    """Planned once per entry, a journal of 3,000 entries of one apply of phase1 (pre-images
    that are never checked can be empty) kept revert busy for three minutes."""
    import hdrfix.core.revert as revert_module

    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    data = json.loads((repo / JOURNAL).read_text(encoding="utf-8"))
    data["entries"] = [dict(data["entries"][0], id=i + 1) for i in range(50)]
    (repo / JOURNAL).write_text(json.dumps(data), encoding="utf-8")
    planned = []
    real = revert_module.phase_targets

    def counted(*args):
        planned.append(args)
        return real(*args)

    monkeypatch.setattr(revert_module, "phase_targets", counted)
    assert hdrfix("revert", "--repo", repo).code == 0
    assert len(planned) == 1


def test_no_home_to_keep_the_seal_key_in_is_one_line_and_nothing_written(repo, monkeypatch):
    """Without HDRFIX_STATE_HOME, XDG_STATE_HOME or a home folder, apply cannot seal its
    record: one line before anything is written, never a traceback."""
    for name in ("HDRFIX_STATE_HOME", "XDG_STATE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(
        Path, "home", classmethod(lambda cls: (_ for _ in ()).throw(RuntimeError("no home")))
    )
    refused(repo, "apply", "phase1", says="cannot keep hdrfix's key")
