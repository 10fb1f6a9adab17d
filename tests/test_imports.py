"""`--help`, `list`, `status` and `apply` never import torch; `--help` and `list` not libcst."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
from hdrfix.cli import main
try:
    main({args!r}, standalone_mode=False)
except SystemExit:
    pass
print(sorted(m for m in ("torch", "libcst", "matplotlib") if m in sys.modules))
"""


def imported_by(*args: str) -> list[str]:
    code = PROBE.format(args=list(args))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["list"]])
def test_help_and_list_import_neither_torch_nor_libcst(args: list[str]) -> None:
    assert imported_by(*args) == []


def test_status_and_apply_do_not_import_torch(framework: Path) -> None:
    assert "torch" not in imported_by("status", "--repo", str(framework))
    assert "torch" not in imported_by("apply", "phase1", "phase2", "--repo", str(framework))
    assert "torch" not in imported_by("apply", "phase3", "bound", "--repo", str(framework))
