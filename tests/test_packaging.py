"""The wheel, installed in a fresh venv with no checkout around, is a working hdrfix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import FRAMEWORK, ROOT, built_in_phases, hdrfix, snapshot

EXAMPLE = ROOT / "examples" / "hdrfix-eps-phase"


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the built wheel and the example plugin package (no torch)."""
    tmp = tmp_path_factory.mktemp("wheel")
    for project in (ROOT, EXAMPLE):
        built = run(
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            tmp / "dist",
            project,
        )
        assert built.returncode == 0, built.stderr[-2000:]
        shutil.rmtree(project / "build", ignore_errors=True)
    env = tmp / "venv"
    # no pip of its own (ensurepip took seconds): this pip installs into it (--python)
    venv.EnvBuilder(with_pip=False).create(env)
    wheels = (tmp / "dist").glob("*.whl")
    pip = run(
        sys.executable, "-m", "pip", "--python", env / "bin/python", "install", "--quiet", *wheels
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    return env / "bin"


def test_wheel_lists_every_builtin_phase_and_the_third_party_one(installed: Path) -> None:
    version = run(installed / "hdrfix", "--version")
    assert version.returncode == 0 and "hdrfix, version 0.2.0" in version.stdout
    listed = run(installed / "hdrfix", "list", cwd=installed)
    names = [line.split()[0] for line in listed.stdout.splitlines()[1:]]
    assert names == sorted([*built_in_phases(), "eps4"])  # the wheel holds every built-in


def test_wheel_applies_phase1_and_the_example_phase(installed: Path, tmp_path: Path) -> None:
    repo = shutil.copytree(FRAMEWORK, tmp_path / "fw", ignore=shutil.ignore_patterns("__pycache__"))
    before = snapshot(repo)
    # not a git tree: without --repo hdrfix would refuse (it looks for the working tree's root)
    assert run(installed / "hdrfix", "status", cwd=repo).returncode == 2
    dry = run(installed / "hdrfix", "apply", "phase1", "--dry-run", "--repo", ".", cwd=repo)
    added = [line for line in dry.stdout.splitlines() if line.startswith("+")]
    assert dry.returncode == 0
    assert any("delta_log = torch.clamp(delta_log" in line for line in added)
    assert snapshot(repo) == before
    check = run(installed / "hdrfix", "apply", "eps4", "--check", "--repo", ".", cwd=repo)
    assert check.returncode == 1
    assert run(installed / "hdrfix", "apply", "eps4", "--repo", ".", cwd=repo).returncode == 0
    assert "log_epsilon: 0.0001" in (repo / "configs/colleague_training_config.yaml").read_text()
    assert run(installed / "hdrfix", "revert", "eps4", "--repo", ".", cwd=repo).returncode == 0
    assert {k: v for k, v in snapshot(repo).items() if not k.startswith(".hdrfix")} == before


def test_wheel_ships_the_fixture_and_names_the_torch_extra(installed: Path) -> None:
    result = run(installed / "hdrfix", "validate", "--steps", "1", cwd=installed)
    assert result.returncode == 2
    assert "pip install 'hdrfix[torch]'" in result.stderr
    assert "validate needs" in result.stderr
    trial = run(installed / "hdrfix", "trial", "--repo", str(FRAMEWORK), cwd=installed)
    assert trial.returncode == 2
    assert "trial needs" in trial.stderr and "pip install 'hdrfix[torch]'" in trial.stderr
    shipped = run(
        installed / "python",
        "-c",
        "from hdrfix.validate.fixture import framework_dir; print(framework_dir())",
        cwd=installed,
    )
    assert "site-packages/hdrfix/fixtures/framework" in shipped.stdout


def test_example_phase_loads_from_a_plugin_folder(framework: Path) -> None:
    folder = EXAMPLE / "hdrfix_eps_phase"
    listed = hdrfix("--plugins", folder, "list")
    assert "eps4" in listed.out and "raise normalization.log_epsilon" in listed.out
    result = hdrfix("--plugins", folder, "apply", "eps4", "--repo", framework, "--dry-run")
    assert result.code == 0
    assert "-  log_epsilon: 1.0e-6\n+  log_epsilon: 0.0001\n" in result.out
