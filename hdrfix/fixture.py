"""Where the bundled replica of the user's framework lives, and copies of it to work on."""

from __future__ import annotations

import shutil
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
# In a checkout the fixture sits beside the package; an installed wheel carries it inside.
CANDIDATES = (_PACKAGE.parent / "fixtures" / "framework", _PACKAGE / "fixtures" / "framework")


def framework_dir() -> Path:
    for candidate in CANDIDATES:
        if (candidate / "train").is_dir():
            return candidate
    from hdrfix.errors import HdrfixError

    raise HdrfixError(
        "the bundled fixture framework is missing", str(CANDIDATES[-1]), hint="reinstall hdrfix"
    )


def copy_framework(dest: Path) -> Path:
    """A fresh copy of the fixture framework at ``dest`` (which must not exist)."""
    shutil.copytree(
        framework_dir(), dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".hdrfix")
    )
    return dest
