"""No lost edit: a file saved while hdrfix stages is kept, and the commit is rolled back.

The edit is injected from inside the staging loop (deterministic, no timing): each target is
read and hashed again just before its replace, and one that changed since the plan stops the
commit, which puts back what it had replaced.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import hdrfix, plugin_dir, snapshot

from hdrfix.core import commit

FILES = 400
MARK = "# stamped by the test phase\n"
STAMP = f"""
    for rel in repo.files(('.yaml',)):
        text = repo.text(rel)
        if text.endswith({MARK!r}):
            plan.done(rel, None, 'stamp')
        else:
            plan.todo(rel, None, 'stamp')
            plan.text_edits[rel] = text + {MARK!r}
"""


@pytest.fixture
def many(tmp_path: Path) -> tuple[Path, Path]:
    """A tree of 400 YAML files, and a phase that appends a line to each."""
    root = tmp_path / "many"
    for i in range(FILES):
        path = root / f"configs/run_{i:03d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"run: {i}\n", encoding="utf-8")
    return root, plugin_dir(tmp_path / "plugins", "stamp", STAMP)


def edit_while_staging(monkeypatch, at: int, path: Path, text: str) -> None:
    """The user saves ``path`` when hdrfix stages its ``at``-th new file."""
    real = commit._stage
    calls: list[Path] = []

    def stage(tmp: Path, data: bytes, like: Path | None) -> None:
        real(tmp, data, like)
        if like is not None:
            calls.append(like)
            if len(calls) == at:
                path.write_text(text, encoding="utf-8")

    monkeypatch.setattr(commit, "_stage", stage)


@pytest.mark.parametrize("edited", [10, 200, 399])  # staged before, at, after the edit
def test_an_edit_saved_during_staging_of_400_files_is_never_lost(many, edited, monkeypatch):
    root, plugins = many
    target = root / f"configs/run_{edited:03d}.yaml"
    mine = f"run: {edited}\nmine: saved while hdrfix staged\n"
    edit_while_staging(monkeypatch, 200, target, mine)
    before = snapshot(root)
    result = hdrfix("--plugins", plugins, "apply", "stamp", "--repo", root)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert f"configs/run_{edited:03d}.yaml: changed on disk while hdrfix was writing" in result.err
    assert target.read_text(encoding="utf-8") == mine  # the edit is there
    after = snapshot(root)
    changed = {k for k in after if after[k] != before.get(k) and not k.startswith(".hdrfix/")}
    assert changed == {f"configs/run_{edited:03d}.yaml"}  # every other file as before
    assert not list(root.rglob("*.hdrfix-tmp")) and not (root / commit.INTENT).exists()
    assert not (root / ".hdrfix/journal.json").exists()  # no record of a commit that did not happen


def test_an_edit_saved_during_a_revert_is_never_lost(many, monkeypatch):
    root, plugins = many
    assert hdrfix("--plugins", plugins, "apply", "stamp", "--repo", root).code == 0
    target = root / "configs/run_123.yaml"
    mine = target.read_text(encoding="utf-8") + "mine: saved during the revert\n"
    edit_while_staging(monkeypatch, 300, target, mine)
    before = snapshot(root)
    result = hdrfix("--plugins", plugins, "revert", "--repo", root)
    assert result.code == 2 and "configs/run_123.yaml: changed on disk" in result.err
    after = snapshot(root)
    assert target.read_text(encoding="utf-8") == mine
    assert {k for k in after if after[k] != before.get(k)} == {"configs/run_123.yaml"}
