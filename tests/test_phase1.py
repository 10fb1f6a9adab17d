"""phase1 on the fixture framework and on every code/config shape of DESIGN §2."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from conftest import VARIANTS, hdrfix, snapshot

from hdrfix.logdomain import clamped_after, is_clamp_of
from hdrfix.repo import Repo
from hdrfix.targets import sites_in

CONFIG = "configs/colleague_training_config.yaml"
TRAINER = "train/patch_training_framework.py"


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    old, new = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            old.append(line[2:])
        elif line.startswith("+ "):
            new.append(line[2:])
    return old, new


def clamps_per_site(repo: Path, rel: str) -> list[int]:
    """For each log-domain site, how many clamp statements follow its computation."""
    counts = []
    for _, _, sites in sites_in(Repo(repo), rel):
        for site in sites:
            body = site.compute.block.body[site.compute.index + 1 :]
            counts.append(sum(is_clamp_of(s, site.residual) for s in body))
    return counts


def test_dry_run_shows_the_diff_and_writes_nothing(framework: Path) -> None:
    before = snapshot(framework)
    result = hdrfix("apply", "phase1", "--repo", framework, "--dry-run")
    assert result.code == 0
    assert snapshot(framework) == before
    assert f"--- a/{CONFIG}\n+++ b/{CONFIG}\n" in result.out
    assert "-  log_delta_abs_max: 16.0    # 残差上限" in result.out
    assert (
        "+  log_delta_abs_max: 6.0     # 残差上限" in result.out
        or "+  log_delta_abs_max: 6.0    # 残差上限" in result.out
    )
    assert result.out.count("+        delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)") == 2
    assert "not patched: src/npu/deploy/patch_inference.py:" in result.err


def test_check_fails_before_and_passes_after_apply(framework: Path) -> None:
    assert hdrfix("apply", "phase1", "--repo", framework, "--check").code == 1
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    assert hdrfix("apply", "phase1", "--repo", framework, "--check").code == 0
    applied = snapshot(framework)
    again = hdrfix("apply", "phase1", "--repo", framework)
    assert again.code == 0 and "no changes" in again.err
    assert snapshot(framework) == applied


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
    inference = "src/npu/deploy/patch_inference.py"
    result = hdrfix("apply", "phase1", "--repo", framework, "--include", framework / inference)
    assert result.code == 0, result.err
    assert clamps_per_site(framework, inference) == [1]
    assert f"not patched: {inference}" not in result.err
    assert "not patched: tools/diagnose_overflow.py" in result.err


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
def test_variant_sites_clamped_once_and_idempotent(name: str, variant) -> None:
    repo = variant(name)
    first = hdrfix("apply", "phase1", "--repo", repo)
    assert first.code == 0, first.err
    repo_obj = Repo(repo)
    found = [
        s
        for rel in repo_obj.candidates((".py",), b"training_step")
        for _, _, sites in sites_in(repo_obj, rel)
        for s in sites
    ]
    assert found and all(clamped_after(s) for s in found)
    applied = snapshot(repo)
    assert hdrfix("apply", "phase1", "--repo", repo, "--check").code == 0
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    assert snapshot(repo) == applied


def test_supervision_off_is_reported(variant) -> None:
    repo = variant("supervision_off")
    result = hdrfix("apply", "phase1", "--repo", repo, "--dry-run")
    assert result.code == 0
    assert "log_supervision_enable is false" in result.err and "no effect" in result.err
    assert "-  log_supervision_enable: false" not in result.out  # never switched on for the user


def test_flow_mapping_changes_one_line(variant) -> None:
    repo = variant("flow_yaml")
    config = repo / CONFIG
    before = config.read_text()
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
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


def test_hand_clamped_method_is_left_alone(variant) -> None:
    repo = variant("hand_clamped")
    status = hdrfix("status", "--repo", repo, "--format", "json")
    phase1 = next(p for p in json.loads(status.out)["phases"] if p["phase"] == "phase1")
    sites = [i for i in phase1["items"] if i["what"].endswith("clamp delta_log")]
    assert [i["done"] for i in sites] == [True, False] and phase1["state"] == "partial"
    training_before = (repo / TRAINER).read_text().split("def validation_step")[0]
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    assert (repo / TRAINER).read_text().split("def validation_step")[0] == training_before
    assert clamps_per_site(repo, TRAINER) == [1, 1]
