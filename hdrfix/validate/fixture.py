"""Where the bundled replica of the user's framework lives, and copies of it to work on."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent.parent  # the hdrfix package
# In a checkout the fixture sits beside the package; an installed wheel carries it inside.
CANDIDATES = (_PACKAGE.parent / "fixtures" / "framework", _PACKAGE / "fixtures" / "framework")

# Where things sit in the fixture (the field's layout, docs/design.md §2.1).
FRAMEWORK_CONFIG = "configs/colleague_training_config.yaml"
TRAINER_MODULE = "train.patch_training_framework"
FIXTURE_NETWORK = "src/npu/networks/patch/patch_network.py"
#: The fixture's top-level packages: each variant's copy defines them anew.
FIXTURE_PACKAGES = ("train", "src", "tools")


def framework_dir() -> Path:
    for candidate in CANDIDATES:
        if (candidate / "train").is_dir():
            return candidate
    from hdrfix.lang.errors import HdrfixError

    raise HdrfixError(
        "the bundled fixture framework is missing", str(CANDIDATES[-1]), hint="reinstall hdrfix"
    )


def copy_framework(dest: Path) -> Path:
    """A fresh copy of the fixture framework at ``dest`` (which must not exist)."""
    shutil.copytree(
        framework_dir(), dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".hdrfix")
    )
    return dest


#: The trainer class of the fixture (the field's name, docs/design.md §2.1).
TRAINER_CLASS = "PatchFrameInterpolationTrainer"


def build_trainer(module: Any, config: dict[str, Any]) -> Any:
    """The fixture trainer of ``module`` (``train.patch_training_framework``) for ``config``.

    The field's constructor takes the config's sections one by one:
    ``PatchFrameInterpolationTrainer(model_config, training_config, data_config, full_config)``;
    the model section is ``network:``.
    """
    cls = getattr(module, TRAINER_CLASS)
    return cls(
        config.get("network") or {},
        config.get("training") or {},
        config.get("data"),
        full_config=config,
    )
