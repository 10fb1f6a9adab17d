"""Every phase option is checked once, by its declaration: finite, within float32 where it
lands in a tensor, in its range; wherever it came from (a flag, ``--set``, ``[tool.hdrfix]``,
``.hdrfix.toml``), a bad value is one line naming that source, exit 2, nothing written."""

from __future__ import annotations

import pytest
from conftest import built_in_phases, hdrfix, refusal

from hdrfix.core.plugin import Option
from hdrfix.lang.errors import HdrfixError


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # 1e308 is inf as the float32 parameter phase2 writes
        (("phase1", "phase2", "--scale-init", "1e308"), "--scale-init must be a finite number"),
        # phase3 wrote `.inf` into the config
        (("phase1", "phase3", "--weight", "inf"), "--weight must be a finite number at least 0"),
        (("phase1", "phase3", "--weight", "nan"), "--weight must be a finite number at least 0"),
        (("phase1", "phase3", "--weight", "-0.5"), "--weight must be a finite number at least 0"),
        # a traceback: the ceiling's exp did not fit a float32
        (("bound", "--ceiling", "1e39"), "--ceiling must be a finite number above 1"),
        (("phase1", "--clamp", "0"), "--clamp must be a finite number above 0"),
        (("phase1", "--clamp", "-8"), "--clamp must be a finite number above 0"),
        # rounds to 0 in float32: a clamp that zeroes every residual
        (("phase1", "--clamp", "1e-50"), "--clamp must be a finite number above 0"),
    ],
)
def test_a_flag_out_of_range_is_one_line_naming_the_flag(framework, args, message):
    err = refusal(framework, "apply", *args)
    assert err.startswith(f"hdrfix: error: {message}")
    assert "float32 range" in err


def test_status_checks_the_same_values_and_the_float32_edge_still_applies(framework):
    err = refusal(framework, "status", "--ceiling", "1e39")
    assert err.startswith("hdrfix: error: --ceiling must be a finite number above 1")
    dry = hdrfix("apply", "bound", "--repo", framework, "--dry-run", "--ceiling", "3.4e38")
    assert dry.code == 0, dry.err
    assert "log_output_max: 88.722" in dry.out  # log(3.4e38), to a float32 whose exp fits
    dry = hdrfix("apply", "phase1", "phase3", "--repo", framework, "--dry-run", "--weight", "0")
    assert dry.code == 0 and "residual_distribution_weight: 0.0" in dry.out


def test_set_names_itself_not_the_flag(framework):
    err = refusal(framework, "apply", "phase1", "--set", "phase1.clamp=inf")
    assert err.startswith("hdrfix: error: --set phase1.clamp=inf must be a finite number above 0")


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        (
            ".hdrfix.toml",
            "[phase1]\nclamp = inf\n",
            ".hdrfix.toml:2: phase1.clamp must be a finite",
        ),
        (".hdrfix.toml", "\n[phase1]\nclamp = nan\n", ".hdrfix.toml:3: phase1.clamp must be a fin"),
        (
            ".hdrfix.toml",
            "[bound]\nceiling = 1e39\n",
            ".hdrfix.toml:2: bound.ceiling must be a fin",
        ),
        (".hdrfix.toml", "[phase3]\nweight = -1\n", ".hdrfix.toml:2: phase3.weight must be a fin"),
        # float(True) is 1.0: a boolean was read as a clamp at 1
        (
            ".hdrfix.toml",
            "[phase1]\nclamp = true\n",
            ".hdrfix.toml:2: phase1.clamp must be a number",
        ),
        # a dotted key has no table header to find the key under
        (".hdrfix.toml", "phase1.clamp = inf\n", ".hdrfix.toml:1: phase1.clamp must be a finite"),
        (
            "pyproject.toml",
            '[project]\nname = "fw"\n\n[tool.hdrfix.phase2]\nscale_init = 1e300\n',
            "pyproject.toml:5: phase2.scale_init must be a finite",
        ),
    ],
)
def test_a_project_setting_out_of_range_names_its_file_and_line(framework, file, text, message):
    (framework / file).write_text(text)
    for args in (("apply", *built_in_phases()), ("status",)):
        assert refusal(framework, *args).startswith(f"hdrfix: error: {message}")


def test_migrate_checkpoint_refuses_a_scale_float32_cannot_hold(tmp_path):
    (tmp_path / "in.ckpt").write_bytes(b"not read: the value is checked first")
    result = hdrfix(
        "migrate-checkpoint", tmp_path / "in.ckpt", tmp_path / "out.ckpt", "--scale-init", "1e308"
    )
    assert result.code == 2 and len(result.err.splitlines()) == 1
    assert "--scale-init must be a finite number above 0 in float32 range" in result.err
    assert not (tmp_path / "out.ckpt").exists()


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf"), 1e39, 1e-50])
def test_the_option_itself_refuses_what_a_float32_clamp_cannot_be(value):
    clamp = Option("clamp", "bound", float, above=0.0)
    with pytest.raises(HdrfixError, match=r"^x must be a finite number above 0 in float32 range"):
        clamp.checked(value, "x")
    assert clamp.checked(6.0, "x") == 6.0
    assert clamp.convert("1e-45", "x") == 1e-45  # a subnormal float32 is still itself


def test_an_int_option_may_be_large_but_not_a_boolean():
    steps = Option("steps", "how many", int, at_least=1)
    assert steps.convert(10**30, "steps") == 10**30  # no float conversion to overflow
    with pytest.raises(HdrfixError, match="steps must be a whole number, got True"):
        steps.convert(True, "steps")
    with pytest.raises(HdrfixError, match="steps must be a finite number at least 1, got 0"):
        steps.convert("0", "steps")


@pytest.mark.parametrize(
    ("phase", "written", "planted"),
    [
        # a ceiling whose exp is inf bounds nothing
        ("bound", "log_output_max: 11.089865684509277", "log_output_max: .inf"),
        ("bound", "log_output_max: 11.089865684509277", "log_output_max: 1000.0"),
        ("phase3", "residual_distribution_weight: 0.5", "residual_distribution_weight: .inf"),
    ],
)
def test_a_config_value_a_float32_cannot_hold_is_not_kept(framework, phase, written, planted):
    """Without a flag, a phase keeps the config's own ceiling or weight: not when it is inf."""
    args = ("apply", "phase1", phase, "--repo", framework)
    assert hdrfix(*args).code == 0
    for config in (framework / "configs").rglob("*.yaml"):
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace(written, planted), encoding="utf-8")
    assert hdrfix(*args, "--check").code == 1  # pending again, not "applied"
    assert hdrfix(*args).code == 0
    assert hdrfix(*args, "--check").code == 0
    texts = [c.read_text(encoding="utf-8") for c in (framework / "configs").rglob("*.yaml")]
    assert any(written in t for t in texts) and not any(planted in t for t in texts)


EXTRA = """from hdrfix.core.plugin import Option, Phase, PhasePlan


class Extra(Phase):
    name = "extra"
    summary = "a phase whose option shares phase3's name"
    options = (Option("weight", "how heavy", float),)

    def plan(self, repo, options):
        return PhasePlan(self.name)
"""


def test_the_line_named_is_the_one_in_the_phases_own_table(framework, tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "extra.py").write_text(EXTRA, encoding="utf-8")
    (framework / ".hdrfix.toml").write_text("[extra]\nweight = 1.0\n\n[phase3]\nweight = inf\n")
    err = refusal(framework, "--plugins", str(tmp_path / "plugins"), "status")
    assert err.startswith("hdrfix: error: .hdrfix.toml:5: phase3.weight must be a finite number")


def test_one_check_whatever_the_source(framework) -> None:
    """A value is converted and checked by its Option once, the same from every source: only
    the named source differs (the flag, --set, or the project file with its line)."""
    requirement = (
        "must be a finite number above 0 in float32 range (up to 3.4e38, not rounding to 0)"
    )
    by_flag = refusal(framework, "apply", "phase1", "--clamp", "0")
    by_set = refusal(framework, "apply", "phase1", "--set", "phase1.clamp=0")
    (framework / ".hdrfix.toml").write_text("[phase1]\nclamp = 0\n")
    by_file = refusal(framework, "apply", "phase1")
    (framework / ".hdrfix.toml").unlink()
    (framework / "pyproject.toml").write_text("[tool.hdrfix.phase1]\nclamp = 0\n")
    by_table = refusal(framework, "apply", "phase1")
    assert by_flag.startswith(f"hdrfix: error: --clamp {requirement}, got 0.0")
    assert by_set.startswith(f"hdrfix: error: --set phase1.clamp=0 {requirement}, got 0.0")
    assert by_file.startswith(f"hdrfix: error: .hdrfix.toml:2: phase1.clamp {requirement}, got 0")
    assert by_table.startswith(
        f"hdrfix: error: pyproject.toml:2: phase1.clamp {requirement}, got 0"
    )
