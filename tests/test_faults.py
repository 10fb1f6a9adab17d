"""hdrfix's promises when inputs are odd or the machine misbehaves. Each test is one promise."""

from __future__ import annotations

import os
import threading
import time

import pytest
from conftest import hdrfix, link_out, plugin_dir, snapshot
from fielddata import CONFIG, TRAINER

from hdrfix.core import commit

PHASE1_FILES = 3  # two configs and the trainer (plus the journal)


def without_journal(tree: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in tree.items() if not k.startswith(".hdrfix")}


# -- all or nothing ----------------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", range(PHASE1_FILES + 1))
def test_failure_at_any_replace_leaves_every_file_as_it_was(fail_at, framework, monkeypatch):
    real = commit.replace
    calls = []

    def flaky(tmp, target):
        calls.append(target)
        if len(calls) == fail_at + 1:
            raise OSError(5, "Input/output error", str(target))
        real(tmp, target)

    before = snapshot(framework)
    monkeypatch.setattr(commit, "replace", flaky)
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2 and "restored" in result.err
    assert without_journal(snapshot(framework)) == without_journal(before)
    assert not list(framework.rglob("*.hdrfix-tmp"))


@pytest.mark.parametrize("fail_at", range(PHASE1_FILES + 2))  # the intent, then each file
def test_failure_while_staging_writes_nothing(fail_at, framework, monkeypatch):
    real = commit._stage
    calls = []

    def flaky(tmp, data, like):
        calls.append(tmp)
        if len(calls) == fail_at + 1:
            raise OSError(28, "No space left on device", str(tmp))
        return real(tmp, data, like)

    before = snapshot(framework)
    monkeypatch.setattr(commit, "_stage", flaky)
    assert hdrfix("apply", "phase1", "--repo", framework).code == 2
    assert without_journal(snapshot(framework)) == without_journal(before)
    assert not list(framework.rglob("*.hdrfix-tmp"))


def test_file_changed_between_planning_and_writing_is_detected(framework, monkeypatch):
    real = commit.preflight

    def edit_then_check(root, planned):
        (framework / TRAINER).write_text("# edited meanwhile\n", encoding="utf-8")
        real(root, planned)

    monkeypatch.setattr(commit, "preflight", edit_then_check)
    before = snapshot(framework)
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2 and "changed on disk while hdrfix was planning" in result.err
    after = snapshot(framework)
    assert {k for k in after if after[k] != before.get(k)} == {TRAINER}


# -- odd files ----------------------------------------------------------------------------------


def test_directory_where_a_file_was_expected(framework):
    (framework / "configs/extra.yaml").mkdir()
    result = hdrfix(
        "apply", "phase1", "--repo", framework, "--config", framework / "configs/extra.yaml"
    )
    assert result.code == 2 and "configs/extra.yaml" in result.err


def test_symlink_out_of_the_repo_is_refused(framework, tmp_path):
    outside = tmp_path / "outside.yaml"
    before = link_out(framework, CONFIG, outside)
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2 and "outside the repository" in result.err
    assert outside.read_bytes() == before


def test_non_utf8_python_is_refused_unless_declared(framework):
    trainer = framework / TRAINER
    text = trainer.read_text(encoding="utf-8")
    trainer.write_bytes(
        text.replace("import torch\n", "import torch  # caf\xe9\n", 1).encode("latin-1")
    )
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2 and "not valid utf-8" in result.err and TRAINER in result.err
    declared = "# -*- coding: latin-1 -*-\n" + trainer.read_bytes().decode("latin-1")
    trainer.write_bytes(declared.encode("latin-1"))
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    patched = trainer.read_bytes().decode("latin-1")
    assert "caf\xe9" in patched and patched.count("torch.clamp(delta_log") == 2


def test_bom_crlf_and_mixed_line_endings_are_kept(framework):
    trainer = framework / TRAINER
    lines = trainer.read_bytes().split(b"\n")
    # CRLF in the first half, LF in the second: a file edited on two machines
    mixed = b"\r\n".join(lines[: len(lines) // 2]) + b"\r\n" + b"\n".join(lines[len(lines) // 2 :])
    trainer.write_bytes(b"\xef\xbb\xbf" + mixed)
    config = framework / CONFIG
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes().replace(b"\n", b"\r\n"))
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    new_trainer, new_config = trainer.read_bytes(), config.read_bytes()
    assert new_trainer.startswith(b"\xef\xbb\xbf") and new_config.startswith(b"\xef\xbb\xbf")
    assert new_config.count(b"\n") == new_config.count(b"\r\n")
    head = new_trainer.split(b"\r\n")
    assert len(head) > len(lines) // 2  # the CRLF half is still CRLF
    assert b"log_delta_abs_max: 6.0" in new_config


def test_tabs_for_indentation(framework):
    trainer = framework / TRAINER
    text = trainer.read_text(encoding="utf-8")
    tabbed = "\n".join(
        "\t" * ((len(line) - len(line.lstrip(" "))) // 4) + line.lstrip(" ")
        for line in text.split("\n")
    )
    trainer.write_text(tabbed, encoding="utf-8")
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    patched = trainer.read_text()
    clamp = "delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)\n"
    for tabs in (4, 3):  # the log arm of training_step, then of validation_step
        assert patched.count("\n" + "\t" * tabs + clamp) == 1


def test_anchors_and_merge_keys_are_edited_where_defined(framework):
    (framework / "configs/presets").joinpath("fast_test.yaml").unlink()
    (framework / CONFIG).write_text(
        "base_norm: &norm\n  log_delta_abs_max: 16.0\n  log_delta_alpha: 1.2\n"
        "  log_supervision_weight: 1.0\n  log_supervision_type: l1\n"
        "normalization:\n  <<: *norm\n  log_epsilon: 1.0e-6\n",
        encoding="utf-8",
    )
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    text = (framework / CONFIG).read_text()
    assert "  <<: *norm\n" in text and "base_norm: &norm\n  log_delta_abs_max: 6.0\n" in text


def test_billion_laughs_is_refused_quickly(framework):
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        bomb.append(f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join(['*' + prev] * 9)}]")
    bomb.append("normalization: {log_delta_abs_max: 16.0}")
    (framework / "configs/bomb.yaml").write_text("\n".join(bomb) + "\n", encoding="utf-8")
    start = time.perf_counter()
    result = hdrfix("apply", "phase1", "--repo", framework, "--dry-run")
    assert result.code == 2 and "configs/bomb.yaml" in result.err
    assert time.perf_counter() - start < 5


def test_ten_megabyte_yaml(framework):
    config = framework / CONFIG
    filler = "".join(f"  key_{i}: value number {i}   # comment\n" for i in range(250_000))
    config.write_text(config.read_text() + "bulk:\n" + filler, encoding="utf-8")
    assert config.stat().st_size > 10_000_000
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    assert config.read_text().endswith(filler)


def test_framework_of_twenty_thousand_lines(framework):
    trainer = framework / TRAINER
    text = trainer.read_text(encoding="utf-8")
    padding = "".join(
        f"\n    def helper_{i}(self, x):\n        y = x * {i}\n        return y + 1\n"
        for i in range(5000)
    )
    marker = "    def training_step"
    trainer.write_text(
        text.replace(marker, padding.lstrip("\n") + "\n" + marker, 1), encoding="utf-8"
    )
    assert len(trainer.read_text().splitlines()) > 20_000
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    assert trainer.read_text().count("torch.clamp(delta_log") == 2


# -- revert ----------------------------------------------------------------------------------


def test_apply_then_revert_is_byte_identical(framework):
    before = snapshot(framework)
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    dry = hdrfix("revert", "phase1", "--repo", framework, "--dry-run")
    removed = [line for line in dry.out.splitlines() if line.startswith("-")]
    # both clamps come out: the training step's log arm is one level deeper than validation's
    assert dry.code == 0 and [line for line in removed if "torch.clamp(delta_log" in line] == [
        f"-{' ' * indent}delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)"
        for indent in (16, 12)
    ]
    assert hdrfix("revert", "phase1", "--repo", framework).code == 0
    assert without_journal(snapshot(framework)) == without_journal(before)
    status = hdrfix("status", "--repo", framework)
    assert "phase1: pending" in status.out and "reverted" in status.out


def test_revert_refuses_a_file_edited_since_and_force_structural_keeps_the_edit(framework):
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    trainer = framework / TRAINER
    edited = trainer.read_text().replace("import torch\n", "import torch\nimport math  # mine\n", 1)
    trainer.write_text(edited)
    before = snapshot(framework)
    refused = hdrfix("revert", "phase1", "--repo", framework)
    assert refused.code == 2 and f"{TRAINER}: was edited since hdrfix wrote it" in refused.err
    assert "--force-structural" in refused.err and snapshot(framework) == before
    assert hdrfix("revert", "phase1", "--repo", framework, "--force-structural").code == 0
    text = trainer.read_text()
    assert "import math  # mine" in text and "torch.clamp(delta_log" not in text


def test_revert_of_a_required_phase_needs_its_dependents_named(framework, tmp_path):
    marker = """
        text = repo.text('README.md')
        if text.endswith('# extra\\n'):
            plan.done('README.md', None, 'marker')
        else:
            plan.todo('README.md', None, 'marker')
            plan.text_edits['README.md'] = text + '# extra\\n'
    """
    plugins = plugin_dir(
        tmp_path / "plugins", "extra", marker, requires=("phase1",), writes=(".md",)
    )
    before = snapshot(framework)
    assert hdrfix("--plugins", plugins, "apply", "phase1", "--repo", framework).code == 0
    assert hdrfix("--plugins", plugins, "apply", "extra", "--repo", framework).code == 0
    refused = hdrfix("--plugins", plugins, "revert", "phase1", "--repo", framework)
    assert refused.code == 2 and "extra is applied and requires phase1" in refused.err
    assert hdrfix("--plugins", plugins, "revert", "phase1", "extra", "--repo", framework).code == 0
    assert without_journal(snapshot(framework)) == without_journal(before)


# -- concurrency ------------------------------------------------------------------------------


def test_a_second_apply_waits_for_the_lock_or_fails_cleanly(framework, monkeypatch):
    from filelock import FileLock

    from hdrfix.core import lock

    monkeypatch.setattr(lock, "WAIT_SECONDS", 0.2)
    (framework / ".hdrfix").mkdir()
    before = snapshot(framework)
    with FileLock(str(framework / ".hdrfix/lock")):
        result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2 and "another hdrfix run" in result.err
    assert without_journal(snapshot(framework)) == without_journal(before)


def test_two_applies_at_once_never_both_write(framework):
    results = []

    def run():
        results.append(hdrfix("apply", "phase1", "--repo", framework))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    import json

    entries = json.loads((framework / ".hdrfix/journal.json").read_text())["entries"]
    assert len(entries) == 1  # exactly one run wrote
    assert sorted(r.code for r in results) in ([0, 0], [0, 2])
    assert (framework / TRAINER).read_text().count("torch.clamp(delta_log") == 2
    assert os.path.exists(framework / ".hdrfix/journal.json")


def test_an_edit_the_files_encoding_cannot_hold_is_refused(framework, tmp_path):
    """Not only OSError: a latin-1 file cannot take a euro sign, and nothing is written."""
    euro = """
        import libcst
        plan.todo('notes.py', None, 'price')
        pyfile = repo.python('notes.py')
        ref = pyfile.function('price')
        body = libcst.parse_statement('def f():\\n    return "5 \\u20ac"\\n').body
        plan.function_edits.append(('notes.py', ref, pyfile.cst(ref).with_changes(body=body)))
    """
    plugins = plugin_dir(tmp_path / "plugins", "euro", euro)
    (framework / "notes.py").write_bytes(
        "# -*- coding: latin-1 -*-\n# caf\xe9\n\n\ndef price():\n    pass\n".encode("latin-1")
    )
    before = snapshot(framework)
    result = hdrfix("--plugins", plugins, "apply", "euro", "--repo", framework)
    assert result.code == 2 and "notes.py:6: the edit holds '\u20ac'" in result.err
    assert snapshot(framework) == before


def test_apply_revert_and_validate_all_write_through_one_commit(framework, tmp_path, monkeypatch):
    from hdrfix.core.plugin import discover
    from hdrfix.patchedcopy import apply_in_copy
    from hdrfix.validate.variants import trainer_only

    real = commit.commit
    actions: list[str] = []

    def spy(root, changes, action):
        actions.append(action)
        real(root, changes, action)

    monkeypatch.setattr(commit, "commit", spy)
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    assert hdrfix("revert", "phase1", "--repo", framework).code == 0
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    copy = framework.rename(scratch / "framework")
    assert apply_in_copy(copy, ["bound"], discover(), trainer_only(copy, {})) == [
        CONFIG,
        "configs/presets/fast_test.yaml",
        TRAINER,
    ]
    assert actions == ["apply phase1", "revert phase1", "apply bound"]
