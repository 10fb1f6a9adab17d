"""Where the bundled replica of the user's framework lives, and copies of it to work on."""

from __future__ import annotations

import shutil
from pathlib import Path

FRAMEWORK = Path(__file__).resolve().parent.parent / "fixtures" / "framework"


def framework_dir() -> Path:
    if not FRAMEWORK.is_dir():
        from hdrfix.errors import HdrfixError

        raise HdrfixError("the bundled fixture framework is missing", str(FRAMEWORK),
                          hint="run hdrfix from a checkout of the hdrfix repository")
    return FRAMEWORK


def copy_framework(dest: Path) -> Path:
    """A fresh copy of the fixture framework at ``dest`` (which must not exist)."""
    shutil.copytree(framework_dir(), dest,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".hdrfix"))
    return dest
