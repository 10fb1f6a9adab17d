"""YAML configs as they come from the field, each once a crash or a false refusal (issue 12).

Each ends either edited correctly or as exit code 2, one line naming the file, nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import hdrfix, snapshot
from fielddata import CONFIG, PRESET

from hdrfix.kit import configedit
from hdrfix.lang import yamledit
from hdrfix.lang.errors import HdrfixError

PHASE1_BEFORE = (
    "  log_delta_abs_max: 16.0\n  log_delta_alpha: 1.2\n"
    "  log_supervision_weight: 1.0\n  log_supervision_type: l1\n"
)
PHASE1_AFTER = (
    "  log_delta_abs_max: 6.0\n  log_delta_alpha: 1.0\n"
    "  log_supervision_weight: 2.0\n  log_supervision_type: huber\n"
)


def phase_state(framework: Path, phase: str) -> str:
    plans = json.loads(hdrfix("status", "--repo", framework, "--format", "json").out)["phases"]
    return next(p["state"] for p in plans if p["phase"] == phase)


def test_three_hundred_levels_of_nesting_exit_2_naming_the_file(framework: Path) -> None:
    deep = "".join("  " * i + f"level_{i}:\n" for i in range(300))
    (framework / "configs/deep.yaml").write_text(deep + "  " * 300 + "log_delta_abs_max: 16.0\n")
    before = snapshot(framework)
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2
    assert result.err == (
        "hdrfix: error: configs/deep.yaml:301: mappings and sequences nest 301 levels deep, "
        "too deep to parse; flatten the nesting, or if this is no training config pass those "
        "with --config\n"
    )
    assert snapshot(framework) == before


@pytest.mark.parametrize(
    "holder",
    [
        "note: '{brackets}'\n",  # in a quoted string
        "note: |\n  {brackets}\n",  # in a block scalar
        "# {brackets}\n",  # in a comment
        "note: [" + "[" * 200 + "]" * 200 + ", '{brackets}']\n",  # deep, not too deep
    ],
)
def test_brackets_that_nest_nothing_are_no_reason_to_refuse(framework: Path, holder) -> None:
    """Nesting past 500 levels is refused from the text up to where a count of its brackets
    passes 500, before anything parses the whole text; brackets in strings and comments count
    there too, so only a parser's confirmation refuses."""
    config = framework / CONFIG
    brackets = "[{" * 400
    config.write_text(
        holder.format(brackets=brackets) + config.read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 0, result.err
    assert brackets in config.read_text(encoding="utf-8")
    assert "log_delta_abs_max: 6.0" in config.read_text(encoding="utf-8")


def test_the_refusal_of_deep_flow_names_the_line_where_it_passes_the_limit(framework: Path):
    """A count of brackets decides which prefix is parsed; the line is the parser's: the 501st
    level opens on line 4 here, after 300 levels on line 3."""
    deep = "[" * 300 + "\n" + "[" * 300 + "]" * 600
    text = f"normalization:\n  log_delta_abs_max: 16.0\n  x: {deep}\n"
    (framework / "configs/deep.yaml").write_text(text, encoding="utf-8")
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 2
    assert result.err.startswith(
        "hdrfix: error: configs/deep.yaml:4: mappings and sequences nest more than 500 levels"
    ), result.err


def test_sweep_with_a_merged_defaults_anchor_is_applied(framework: Path) -> None:
    # 300 merges of a 34-key anchor expand to over 20 000 nodes, but only about 12 times the
    # nodes written: a sweep, not an alias bomb.
    defaults = "defaults: &defaults\n" + PHASE1_BEFORE
    defaults += "".join(f"  extra_{i}: {i}\n" for i in range(30))
    runs = "".join(
        f"  run_{i}:\n    <<: *defaults\n    log_input_dither: {i / 1000}\n" for i in range(300)
    )
    sweep = defaults + "normalization:\n  <<: *defaults\n" + "experiments:\n" + runs
    (framework / CONFIG).write_text(sweep, encoding="utf-8")
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 0, result.err
    # the runs read the anchor too: normalization gets keys of its own, the anchor stays
    section = "normalization:\n  <<: *defaults\n"
    assert (framework / CONFIG).read_text() == sweep.replace(section, section + PHASE1_AFTER)


MULTI = (
    "normalization:\n" + PHASE1_BEFORE + "---\n"
    "experiment: {name: no_section}\n"
    "---\n"
    "normalization:\n  type: global  # no log_delta_abs_max: not a target\n"
    "---\n"
    "normalization: {log_delta_abs_max: 16.0, log_delta_alpha: 1.5, log_supervision_type: l1}\n"
)


def test_multi_document_config_is_edited_in_each_document_holding_the_section(
    framework: Path,
) -> None:
    (framework / "configs/multi.yaml").write_text(MULTI, encoding="utf-8")
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    assert (framework / "configs/multi.yaml").read_text() == (
        "normalization:\n" + PHASE1_AFTER + "---\n"
        "experiment: {name: no_section}\n"
        "---\n"
        "normalization:\n  type: global  # no log_delta_abs_max: not a target\n"
        "---\n"
        "normalization: {log_delta_abs_max: 6.0, log_delta_alpha: 1.0, "
        "log_supervision_type: huber, log_supervision_weight: 2.0}\n"
    )
    assert phase_state(framework, "phase1") == "applied"


def test_multi_document_values_that_disagree_are_an_error_naming_the_line() -> None:
    assert configedit.value_in(MULTI, "multi.yaml", "log_delta_abs_max") == 16.0
    with pytest.raises(HdrfixError) as info:
        configedit.value_in(MULTI, "multi.yaml", "log_delta_alpha")
    assert str(info.value) == (
        "multi.yaml:12: its YAML documents disagree on normalization.log_delta_alpha "
        "(1.2 at line 3, 1.5 here); give every document the same value, or split them into "
        "separate files"
    )


def test_large_config_whose_flow_mappings_go_on_at_column_0_is_edited(framework: Path) -> None:
    # Past yamledit.LARGE only the normalization entry is parsed, cut at lines that look like
    # top-level keys; here those lines go on a flow mapping, so the whole file must be parsed.
    data = "data: {a0: 0,\n" + "".join(f"a{i}: {'x' * 200},\n" for i in range(1, 1400))
    text = data + "last: 0}\nnormalization: {log_delta_abs_max: 16.0,\nlog_delta_alpha: 1.2}\n"
    assert len(text) > yamledit.LARGE
    (framework / CONFIG).write_text(text, encoding="utf-8")
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 0, result.err
    assert (framework / CONFIG).read_text() == text.replace(
        "{log_delta_abs_max: 16.0,\nlog_delta_alpha: 1.2}",
        "{log_delta_abs_max: 6.0,\nlog_delta_alpha: 1.0, log_supervision_weight: 2.0, "
        "log_supervision_type: huber}",
    )


def test_cr_only_config_keeps_its_line_ending_when_a_key_is_added(framework: Path) -> None:
    preset = framework / PRESET
    old = preset.read_bytes().replace(b"\n", b"\r")
    preset.write_bytes(old)
    assert hdrfix("apply", "bound", "--repo", framework).code == 0
    # the preset's keys are sorted: log_output_max goes in its place, ending like the line before
    assert preset.read_bytes() == old.replace(
        b"    log_supervision_enable:",
        b"    log_output_max: 11.089865684509277\r    log_supervision_enable:",
        1,
    )


def test_latin1_config_for_migrate_checkpoint_exits_2_naming_the_line(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    src, dest = tmp_path / "net.pt", tmp_path / "migrated.pt"
    torch.save({"output_conv.weight": torch.ones(1)}, src)
    config = tmp_path / "config.yaml"
    config.write_bytes("normalization:  # réglages\n  log_delta_abs_max: 6.0\n".encode("latin-1"))
    before = snapshot(tmp_path)
    result = hdrfix("migrate-checkpoint", src, dest, "--config", config)
    assert result.code == 2
    assert (
        result.err == f"hdrfix: error: {config}:1: not valid UTF-8 (byte 0xe9); save it as UTF-8\n"
    )
    assert snapshot(tmp_path) == before


def test_every_phase_takes_a_multi_document_config(framework: Path) -> None:
    """bound and phase3 read their kept settings through every target document too."""
    (framework / "configs/multi.yaml").write_text(MULTI, encoding="utf-8")
    assert hdrfix("apply", "phase1", "bound", "phase3", "--repo", framework).code == 0
    text = (framework / "configs/multi.yaml").read_text()
    documents = text.split("---\n")
    assert [d.count("log_output_max: 11.089865684509277") for d in documents] == [1, 0, 0, 1]
    assert [d.count("residual_distribution_weight: 0.5") for d in documents] == [1, 0, 0, 1]
    status = hdrfix("status", "--repo", framework)
    assert status.code == 0
    assert [phase_state(framework, p) for p in ("phase1", "bound", "phase3")] == ["applied"] * 3
