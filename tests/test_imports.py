"""`--help`, `list`, `status` and `apply` never import torch; `--help` and `list` not libcst,
and not the phases' planning code: they read each phase's declaration alone; a phase1 or
phase1+phase2 dry-run of the fixture not libcst."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import hdrfix, refusal

PROBE = """
import sys
from hdrfix.cli import main
try:
    main({args!r}, standalone_mode=False)
except SystemExit:
    pass
print(sorted(m for m in ("torch", "libcst", "matplotlib") if m in sys.modules))
print(sorted(m for m in sys.modules if m.startswith(("hdrfix.", "hdrfix_plugins", "ruamel"))))
"""


def imported_by(*args: str, line: int = -2) -> list[str]:
    code = PROBE.format(args=list(args))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[line])


# What planning needs and reading a declaration must not: the phase kit, the repository, the
# language layer's parsers, YAML, and each built-in phase's planner.
PLANNING = (
    "hdrfix.kit",
    "hdrfix.core.repo",
    "hdrfix.lang.pyfile",
    "hdrfix.lang.yamledit",
    "ruamel",
)
PLANNERS = (
    "hdrfix_plugins.phase1.phase",
    "hdrfix_plugins.phase2.phase",
    "hdrfix_plugins.phase3.phase",
)


@pytest.mark.parametrize("args", [["--help"], ["list"]])
def test_help_and_list_import_neither_torch_nor_libcst(args: list[str]) -> None:
    assert imported_by(*args) == []


STDLIB_PROBE = """
import sys
from hdrfix.cli import main
try:
    main(["--help"], standalone_mode=False)
except SystemExit:
    pass
print(sorted(m for m in ("shutil", "json", "configparser") if m in sys.modules))
"""


def test_help_spares_the_standard_modules_it_does_not_need() -> None:
    """shutil (for the terminal's width), json and configparser: 5 ms of a 60 ms --help."""
    out = subprocess.run(
        [sys.executable, "-c", STDLIB_PROBE], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_phase1_plans_the_fixture_without_libcst(framework: Path) -> None:
    """Its clamps are spliced as text where the layout is plain (hdrfix.lang.splice): importing
    libcst alone was a third of the dry-run."""
    assert imported_by("apply", "phase1", "--dry-run", "--repo", str(framework)) == []


def test_phase2_plans_the_fixture_without_libcst(framework: Path) -> None:
    """The scale parameter, forward's bound and Mode A's new value are planned on ast and
    written as text (netplain, modea_plain): libcst's import was a quarter of the dry-run on a
    3,000-line trainer."""
    exclude = ("--exclude", "src/npu/networks/patch_inpainting.py")
    both = ("apply", "phase1", "phase2", "--dry-run", *exclude, "--repo", str(framework))
    assert imported_by(*both) == []
    result = hdrfix(*both)
    assert result.code == 0
    added = [line for line in result.out.splitlines() if line.startswith("+ ")]
    assert any("self.residual_output_scale = nn.Parameter(" in line for line in added)
    assert any("= torch.tanh(" in line and "* self.residual_output_scale" in line for line in added)


def test_an_applied_repository_is_checked_without_libcst(framework: Path) -> None:
    """status and --check find every phase done with ast: the pre-commit case."""
    everything = ("phase1", "phase2", "phase3", "bound")
    include = ("--include", "src/npu/networks/patch_inpainting.py")
    assert hdrfix("apply", *everything, *include, "--repo", framework).code == 0
    check = ["apply", *everything, "--check", *include, "--repo", str(framework)]
    assert "libcst" not in imported_by(*check)
    assert "libcst" not in imported_by("status", "--repo", str(framework))
    assert hdrfix(*check).code == 0


def test_status_and_apply_do_not_import_torch(framework: Path) -> None:
    assert "torch" not in imported_by("status", "--repo", str(framework))
    assert "torch" not in imported_by("apply", "phase1", "phase2", "--repo", str(framework))
    assert "torch" not in imported_by("apply", "phase3", "bound", "--repo", str(framework))


@pytest.mark.parametrize(
    "args", [["--help"], ["list"], ["list", "--format", "json"], ["apply", "--help"]]
)
def test_help_and_list_read_declarations_not_planners(args: list[str]) -> None:
    modules = imported_by(*args, line=-1)
    assert "hdrfix_plugins.phase2" in modules  # the declarations were read (phase2's command)
    assert [m for m in modules if m.startswith(PLANNING) or m in PLANNERS] == []


def test_a_phase_plans_through_its_declared_planner(framework: Path) -> None:
    """The engine imports a planner when a command plans, and only then."""
    modules = imported_by("status", "phase1", "--repo", str(framework), line=-1)
    assert "hdrfix_plugins.phase1.phase" in modules
    assert "hdrfix_plugins.phase3.phase" not in modules  # status of phase1 plans phase1 alone


def test_a_planner_that_cannot_be_loaded_is_one_line(framework: Path, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "lost.py").write_text(
        "from hdrfix.core.plugin import Phase\n\n\n"
        "class Lost(Phase):\n"
        "    name = 'lost'\n    summary = 'its planner moved away'\n"
        "    planner = 'lost_planning_module:plan'\n"
    )
    assert "lost" in hdrfix("--plugins", plugins, "list").out  # the declaration alone is fine
    err = refusal(framework, "--plugins", plugins, "apply", "lost")
    assert "phase 'lost': its planner 'lost_planning_module:plan' cannot be loaded" in err
