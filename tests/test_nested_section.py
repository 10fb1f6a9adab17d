"""``normalization:`` one level deeper than docs/design.md §2 puts it (issue 18.6: ``data:
normalization:``, read by the trainer as ``config['data']['normalization']``). Configs are
found by the keys they hold, so the nested section is found too; before, hdrfix said "no config
found; point at the config with --config FILE", and --config was refused as well."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import FRAMEWORK, hdrfix, imported, snapshot
from ruamel.yaml import YAML

from hdrfix.halffloat import log_ceiling

CONFIG = "configs/colleague_training_config.yaml"
TRAINER = "train/patch_training_framework.py"


def settings(repo: Path) -> dict:
    return YAML(typ="safe", pure=True).load((repo / CONFIG).read_text(encoding="utf-8"))


def test_a_nested_section_is_found_edited_and_read_by_the_trainer(variant):
    repo = variant("nested_normalization")
    before = snapshot(repo)
    status = hdrfix("status", "--repo", repo)  # phase2 errors: the variant has no network
    assert f"{CONFIG}:18  data.normalization.log_delta_abs_max: 6.0" in status.out
    result = hdrfix("apply", "phase1", "bound", "--repo", repo)
    assert result.code == 0, result.err
    norm = settings(repo)["data"]["normalization"]
    assert (norm["log_delta_abs_max"], norm["log_delta_alpha"]) == (6.0, 1.0)
    assert (norm["log_supervision_weight"], norm["log_supervision_type"]) == (2.0, "huber")
    assert norm["log_output_max"] == log_ceiling()
    assert "log_output_max" not in settings(repo)  # nothing at the top level
    # the trainer reads the new key from the same mapping as its other settings
    assert "norm_cfg.get('log_output_max', " in (repo / TRAINER).read_text(encoding="utf-8")
    assert hdrfix("apply", "phase1", "bound", "--repo", repo, "--check").code == 0
    assert hdrfix("revert", "--repo", repo).code == 0
    assert {k: v for k, v in snapshot(repo).items() if not k.startswith(".hdrfix/")} == before


def test_the_patched_trainer_reads_the_nested_values(variant):
    torch = pytest.importorskip("torch")
    repo = variant("nested_normalization")
    assert hdrfix("apply", "phase1", "bound", "--repo", repo).code == 0
    shutil.copytree(FRAMEWORK / "src", repo / "src")  # the network it imports
    with imported(repo, "train.patch_training_framework") as (trainer,):
        model = trainer.PatchTrainingFramework(settings(repo))
        assert (model.log_delta_abs_max, model.log_output_max) == (6.0, log_ceiling())
        gen = torch.Generator().manual_seed(0)
        batch = {
            "warped_rgb": torch.rand(2, 3, 16, 16, generator=gen) * 100,
            "hole_mask": (torch.rand(2, 1, 16, 16, generator=gen) > 0.8).float(),
            "target_rgb": torch.rand(2, 3, 16, 16, generator=gen) * 100,
        }
        out = model.training_step(batch, 0)
        loss = out["loss"] if isinstance(out, dict) else out
        assert torch.isfinite(loss)


def test_config_names_a_file_with_a_nested_section(framework):
    """The refusal used to name --config, which then refused the same file."""
    (framework / "configs/presets/fast_test.yaml").unlink()
    text = (framework / CONFIG).read_text(encoding="utf-8")
    start, end = text.index("\nnormalization:\n") + 1, text.index("\nloss:\n") + 1
    nested = "".join(
        "  " + line if line.strip() else line for line in text[start:end].splitlines(True)
    )
    (framework / CONFIG).write_text(
        text[:start] + "model:\n" + nested + text[end:], encoding="utf-8"
    )
    for extra in ((), ("--config", str(framework / CONFIG))):
        dry = hdrfix("apply", "phase1", "--repo", framework, "--dry-run", *extra)
        assert dry.code == 0, dry.err
        assert (
            "-    log_delta_abs_max: 16.0" in dry.out and "+    log_delta_abs_max: 6.0" in dry.out
        )
        assert "model.normalization.log_delta_abs_max: 6.0" in dry.err


def test_two_nested_sections_are_each_a_target(framework):
    (framework / "configs/presets/fast_test.yaml").unlink()
    (framework / CONFIG).write_text(
        "train:\n  normalization:\n    log_delta_abs_max: 16.0\n    log_delta_alpha: 1.2\n"
        "eval:\n  normalization: {log_delta_abs_max: 16.0, log_delta_alpha: 1.2}\n"
        "model:\n  normalization: {type: batch}  # holds no log_delta_abs_max: not a target\n",
        encoding="utf-8",
    )
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    data = settings(framework)
    assert data["train"]["normalization"]["log_delta_abs_max"] == 6.0
    assert data["eval"]["normalization"]["log_delta_alpha"] == 1.0
    assert data["model"]["normalization"] == {"type": "batch"}


def test_nested_sections_aliasing_one_mapping_are_edited_at_its_anchor(framework):
    """Both readers of &norm are targets: its definition is the one place to edit."""
    (framework / "configs/presets/fast_test.yaml").unlink()
    text = (
        "norm: &norm\n  log_delta_abs_max: 16.0\n  log_delta_alpha: 1.2\n"
        "train:\n  normalization: *norm\neval:\n  normalization: *norm\n"
    )
    (framework / CONFIG).write_text(text, encoding="utf-8")
    result = hdrfix("apply", "phase1", "bound", "--repo", framework)
    assert result.code == 0, result.err
    after = (framework / CONFIG).read_text(encoding="utf-8")
    assert after.startswith("norm: &norm\n  log_delta_abs_max: 6.0\n  log_delta_alpha: 1.0\n")
    assert after.endswith("train:\n  normalization: *norm\neval:\n  normalization: *norm\n")
    data = settings(framework)
    assert data["train"]["normalization"]["log_output_max"] == log_ceiling()


def test_a_section_in_a_list_is_named_where_it_is_not_sent_to_config(framework):
    """The old refusal advised --config, which refused the same file."""
    (framework / "configs/presets/fast_test.yaml").unlink()
    (framework / CONFIG).write_text(
        "experiments:\n  - name: a\n    normalization:\n      log_delta_abs_max: 16.0\n",
        encoding="utf-8",
    )
    before = snapshot(framework)
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2 and snapshot(framework) == before
    assert result.err == (
        f"hdrfix: error: {CONFIG}:4: no config found: log_delta_abs_max is here, but in no "
        "mapping named 'normalization' (at the top level, or nested in mappings: a list item "
        "is not looked into); hdrfix edits a 'normalization:' mapping reached through mappings "
        "alone: move the key into one, then rerun\n"
    )


def test_a_section_the_trainer_does_not_read_is_noted(framework, variant):
    """The trainer follows ['data']['normalization']; a top-level section is not that one."""
    trainer = framework / "train/patch_training_framework.py"
    code = trainer.read_text(encoding="utf-8")
    read = "full_config.get('normalization', {}) or {}"
    assert code.count(read) == 1
    trainer.write_text(
        code.replace(read, "(full_config.get('data', {}) or {}).get('normalization', {}) or {}"),
        encoding="utf-8",
    )
    for phase in ("phase1", "bound"):
        dry = hdrfix("apply", phase, "--repo", framework, "--dry-run")
        assert dry.code == 0, dry.err
        assert (
            f"note: {CONFIG}: hdrfix edits normalization, but PatchFrameInterpolationTrainer."
            f"__init__ ({TRAINER}:66) reads its settings from ...['data']['normalization']: "
            "the new values may not reach the trainer; check which section it is given"
        ) in dry.err
    # where the section is the one it reads, nothing is said
    nested = hdrfix("apply", "phase1", "--repo", variant("nested_normalization"), "--dry-run")
    assert nested.code == 0 and "may not reach the trainer" not in nested.err
