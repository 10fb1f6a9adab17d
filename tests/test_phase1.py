"""phase1 on the fixture framework and on every code/config shape of docs/design.md §2."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from conftest import VARIANTS, hdrfix
from fielddata import (
    CLAMP,
    CONFIG,
    INFERENCE,
    MISSING,
    PRESET,
    TOOLS,
    TRAINER,
    applied,
    changed_files,
    check_file,
    check_transformed,
    edit,
)
from sitecheck import clamps_per_site, sites_clamped

# The dry run, --check, a second apply and revert on the fixture and the variants: test_contract.
VALUES = {
    "normalization.log_delta_abs_max": (16.0, 6.0),
    "normalization.log_delta_alpha": (1.2, 1.0),
    "normalization.log_supervision_weight": (1.0, 2.0),
    "normalization.log_supervision_type": ("l1", "huber"),
}
MODE_B = "delta_log = (self.log_delta_scale * denom) * torch.tanh(residual_pred_log) * scale"


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    old, new = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            old.append(line[2:])
        elif line.startswith("+ "):
            new.append(line[2:])
    return old, new


def test_one_clamp_per_site_after_the_mode_if_and_four_values(framework: Path) -> None:
    result, before, after = applied(framework, "phase1")
    # one clamp per site, inside the log arm, right after the Mode A/Mode B if/else (at the
    # if's indentation, not in the else): the training step's arm is one level deeper (it sits
    # under `if 'patch_input' in ...`)
    check_file(
        before,
        after,
        TRAINER,
        [
            edit(
                "PatchFrameInterpolationTrainer.training_step",
                " " * 12 + MODE_B,
                added=[" " * 8 + CLAMP],
            ),
            edit(
                "PatchFrameInterpolationTrainer.validation_step",
                " " * 8 + MODE_B,
                added=[" " * 4 + CLAMP],
            ),
        ],
    )
    check_file(before, after, CONFIG, VALUES)
    # the preset lacked the weight: it gains it; the data config is no target
    check_file(
        before,
        after,
        PRESET,
        VALUES | {"normalization.log_supervision_weight": (MISSING, 2.0)},
    )
    assert changed_files(before, after) == {CONFIG, PRESET, TRAINER}
    assert f"not patched: {INFERENCE}:" in result.err
    assert f"not patched: {TOOLS}:" in result.err
    assert "oracle_residual" not in result.err  # it reconstructs from the ground truth


def test_config_diff_touches_only_the_value_lines(framework: Path) -> None:
    before = (framework / CONFIG).read_text(encoding="utf-8")
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    after = (framework / CONFIG).read_text(encoding="utf-8")
    old, new = changed_lines(before, after)
    assert [line.split(":")[0].strip() for line in old] == [
        "log_delta_abs_max",
        "log_delta_alpha",
        "log_supervision_weight",
        "log_supervision_type",
    ]
    assert [line.split("#")[0].strip() for line in new] == [
        "log_delta_abs_max: 6.0",
        "log_delta_alpha: 1.0",
        "log_supervision_weight: 2.0",
        "log_supervision_type: huber",
    ]
    # the other config gains the key it lacked, in its own indentation; the data config is left
    preset = (framework / "configs/presets/fast_test.yaml").read_text(encoding="utf-8")
    assert "    log_supervision_weight: 2.0" in preset.splitlines()


def test_every_site_is_clamped_exactly_once(framework: Path) -> None:
    assert clamps_per_site(framework, TRAINER) == [0, 0]
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    assert clamps_per_site(framework, TRAINER) == [1, 1]


def test_include_patches_sites_outside_the_framework(framework: Path) -> None:
    result = hdrfix("apply", "phase1", "--repo", framework, "--include", framework / INFERENCE)
    assert result.code == 0, result.err
    assert clamps_per_site(framework, INFERENCE) == [1]
    assert sites_clamped(framework, INFERENCE) == [True]
    assert f"not patched: {INFERENCE}" not in result.err
    assert f"not patched: {TOOLS}" in result.err
    assert clamps_per_site(framework, TOOLS) == [0]


def test_json_summary_lists_phases_files_and_states(framework: Path) -> None:
    result = hdrfix("apply", "phase1", "--repo", framework, "--dry-run", "--format", "json")
    data = json.loads(result.out)
    assert data["mode"] == "dry-run" and data["written"] is False
    assert data["phases"][0]["state"] == "pending"
    assert set(data["files"]) == {CONFIG, TRAINER, "configs/presets/fast_test.yaml"}


def _variants_with_framework() -> list[str]:
    broken = {
        "syntax_error",
        "nonscalar_yaml",
        "malformed_yaml",
        "two_frameworks",
        "net_two_classes",
    }
    return sorted(
        p.name
        for p in (VARIANTS.iterdir() if VARIANTS.is_dir() else [])
        if p.is_dir() and p.name not in broken and not p.name.startswith("_")
    )


@pytest.mark.parametrize("name", _variants_with_framework())
def test_variant_sites_clamped(name: str, variant) -> None:
    """Every site of every variant's trainer is clamped on every path once applied, by
    sitecheck's reading, and phase1's own reading (--check) agrees."""
    repo = variant(name)
    first = hdrfix("apply", "phase1", "--repo", repo)
    assert first.code == 0, first.err
    from hdrfix.core.repo import Repo

    trainers = Repo(repo).candidates((".py",), b"training_step")
    found = [c for rel in trainers for c in sites_clamped(repo, rel)]
    assert found and all(found)
    assert hdrfix("apply", "phase1", "--repo", repo, "--check").code == 0


def test_supervision_off_is_reported(variant) -> None:
    repo = variant("supervision_off")
    before = (repo / CONFIG).read_text(encoding="utf-8")
    result = hdrfix("apply", "phase1", "--repo", repo)
    assert result.code == 0
    assert "log_supervision_enable is false" in result.err and "no effect" in result.err
    # the four values as usual, and supervision never switched on for the user
    check_transformed(before, (repo / CONFIG).read_text(encoding="utf-8"), CONFIG, VALUES)


def test_flow_mapping_changes_one_line(variant) -> None:
    repo = variant("flow_yaml")
    config = repo / CONFIG
    before = config.read_text()
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    check_transformed(
        before,
        config.read_text(),
        CONFIG,
        VALUES,
    )
    old, new = changed_lines(before, config.read_text())
    assert len(old) == len(new) == 1
    assert "log_delta_abs_max: 6.0" in new[0] and "log_supervision_type: huber" in new[0]


def test_crlf_files_stay_crlf(variant) -> None:
    repo = variant("crlf")
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    for rel in (CONFIG, TRAINER):
        data = (repo / rel).read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n") > 0
    assert (
        b"delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)\r\n"
        in (repo / TRAINER).read_bytes()
    )


@pytest.mark.parametrize(
    ("name", "clamps"),
    # after the if/else (old shape); inside each Mode A/Mode B branch (field shape)
    [("hand_clamped", [1, 1]), ("field_hand_clamped_branches", [2, 1])],
)
def test_hand_clamped_method_is_left_alone(name: str, clamps: list[int], variant) -> None:
    repo = variant(name)
    status = hdrfix("status", "--repo", repo, "--format", "json")
    phase1 = next(p for p in json.loads(status.out)["phases"] if p["phase"] == "phase1")
    sites = [i for i in phase1["items"] if i["what"].endswith("clamp delta_log")]
    assert [i["done"] for i in sites] == [True, False] and phase1["state"] == "partial"
    training_before = (repo / TRAINER).read_text().split("def validation_step")[0]
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    assert (repo / TRAINER).read_text().split("def validation_step")[0] == training_before
    assert clamps_per_site(repo, TRAINER) == clamps
    assert sites_clamped(repo, TRAINER) == [True, True]
