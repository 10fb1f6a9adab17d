"""Bad input: one line naming the file and line, exit code 2, and not one byte written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import hdrfix, snapshot


def refused(repo: Path, *args: str) -> str:
    before = snapshot(repo)
    result = hdrfix("apply", *args, "--repo", repo)
    assert result.code == 2
    assert snapshot(repo) == before
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hdrfix: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("syntax_error", "train/patch_training_framework.py:35: Python syntax error"),
        (
            "nonscalar_yaml",
            "configs/colleague_training_config.yaml:17: normalization.log_delta_alpha "
            "is a mapping, expected a scalar",
        ),
        ("malformed_yaml", "configs/colleague_training_config.yaml:20: malformed YAML"),
    ],
)
def test_broken_files_are_named_with_their_line(name: str, where: str, variant) -> None:
    assert where in refused(variant(name), "phase1")


def test_ambiguous_framework_names_the_candidates(variant) -> None:
    repo = variant("two_frameworks")
    message = refused(repo, "phase1")
    assert "trainers/a.py, trainers/b.py" in message and "--framework" in message
    chosen = hdrfix("apply", "phase1", "--repo", repo, "--framework", repo / "trainers/b.py")
    assert chosen.code == 0
    assert "torch.clamp(delta_log" in (repo / "trainers/b.py").read_text()
    assert "torch.clamp(delta_log" not in (repo / "trainers/a.py").read_text()


def test_framework_found_without_default_path(variant) -> None:
    repo = variant("no_default_path")
    result = hdrfix("apply", "phase1", "--repo", repo)
    assert result.code == 0
    assert (repo / "trainers/hdr_trainer.py").read_text().count("torch.clamp(delta_log") == 2
    assert "torch.clamp" not in (repo / "trainers/baseline_trainer.py").read_text()


def test_no_config_says_what_was_searched(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    message = refused(tmp_path, "phase1")
    assert "normalization.log_delta_abs_max" in message and "--config" in message


def test_no_framework_says_what_was_searched(framework: Path) -> None:
    (framework / "train/patch_training_framework.py").unlink()
    message = refused(framework, "phase1")
    assert "no framework found" in message and "--framework" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_target_leaves_every_file_untouched(framework: Path) -> None:
    (framework / "train/patch_training_framework.py").chmod(0o444)
    assert "read-only" in refused(framework, "phase1")


def test_read_only_folder_leaves_every_file_untouched(framework: Path) -> None:
    """Works as root too: an immutable-looking target is simulated by the write preflight."""
    from hdrfix.core import commit as changes

    target = framework / "train/patch_training_framework.py"
    real_access = os.access
    try:
        changes.os.access = lambda p, mode: False if Path(p) == target else real_access(p, mode)
        assert "train/patch_training_framework.py: is read-only" in refused(framework, "phase1")
    finally:
        changes.os.access = real_access


def test_unknown_phase_is_bad_input(framework: Path) -> None:
    assert "unknown phase 'phase9'" in refused(framework, "phase9")


def test_config_without_the_section_is_refused(framework: Path) -> None:
    message = refused(framework, "phase1", "--config", str(framework / "configs/data/dataset.yaml"))
    assert "configs/data/dataset.yaml: has no normalization.log_delta_abs_max" in message


@pytest.mark.parametrize(
    "args",
    [("phase1", "phase2"), ("phase2", "--with-deps"), ("phase1", "phase2", "--dry-run")],
)
def test_phase2_refuses_an_inference_module_neither_included_nor_excluded(
    args: tuple[str, ...], framework: Path
) -> None:
    """After phase2 the network returns tanh * scale: an unpatched copy of Mode A elsewhere
    would apply tanh twice. That is an error until the user says --include or --exclude."""
    inference = "src/npu/networks/patch_inpainting.py"
    message = refused(framework, *args)
    assert message.startswith(f"hdrfix: error: {inference}:63: ")  # its Mode A/Mode B `if`
    assert f"--include {inference}" in message and f"--exclude {inference}" in message


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-3"])
def test_a_clamp_that_is_no_bound_is_refused(framework: Path, value: str) -> None:
    """nan would be written as ``min=-nan``, 0 used to mean the default silently."""
    before = snapshot(framework)
    result = hdrfix("apply", "phase1", "--repo", framework, f"--clamp={value}")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "hdrfix: error: --clamp must be a finite number above 0 in float32 range "
        f"(up to 3.4e38, not rounding to 0), got {float(value)}; fix the value"
    ]
    assert snapshot(framework) == before
