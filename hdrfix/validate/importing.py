"""Importing the patched copies: the trainer, and network files loaded past their package.

Every variant's copy defines the same module names (``train``, ``src``, ...), so each import
forgets the previous copy's modules first, and the run restores the process's own afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hdrfix.validate.fixture import FIXTURE_NETWORK, TRAINER_MODULE

FILE_MODULE_PREFIX = "_hdrfix_validate_"  # networks imported from their file, not a package


@contextlib.contextmanager
def isolated_imports(tops: Sequence[str]) -> Iterator[None]:
    """Forget (and afterwards restore) modules under ``tops`` and sys.path as it was."""
    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] in tops}
    path = list(sys.path)
    try:
        yield
    finally:
        _purge(tops)
        for name in [n for n in sys.modules if n.startswith(FILE_MODULE_PREFIX)]:
            del sys.modules[name]
        sys.modules.update(saved)
        sys.path[:] = path


def _purge(tops: Sequence[str]) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in tops]:
        del sys.modules[name]


def _dotted(rel: str) -> str | None:
    """``src/npu/x.py`` -> ``src.npu.x``; None when a part is no identifier."""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if parts and all(p.isidentifier() for p in parts):
        return ".".join(parts)
    return None


def _load_file(root: Path, rel: str, tops: Sequence[str]) -> Any:
    """Execute the module in file ``rel`` itself and register it under its dotted name.

    Its parent packages are registered as bare package modules (a ``__path__`` and nothing
    else) in place of their ``__init__.py``: in the field, ``src/npu/networks/patch/__init__``
    imports siblings that need OpenCV, and the network file needs only torch. Afterwards an
    ``import`` of the dotted name (the trainer's ``from src.npu.networks.patch.patch_network
    import PatchNetwork``) finds this module, and relative or absolute imports of the file's
    siblings resolve through the bare packages. ``root`` is on sys.path while it runs.

    A file whose dotted name is none, or whose top-level name is not one of ``tops`` (the
    names this run may forget afterwards: another module of this process already holds it),
    is registered under a private name instead, without parents.
    """
    import importlib.util
    import types

    dotted = _dotted(rel)
    if dotted is None or dotted.split(".")[0] not in tops:
        dotted = FILE_MODULE_PREFIX + re.sub(r"\W", "_", rel[:-3])
    else:
        parts = dotted.split(".")
        for depth in range(1, len(parts)):
            name = ".".join(parts[:depth])
            package = types.ModuleType(name)
            package.__path__ = [str(root.joinpath(*parts[:depth]))]
            package.__package__ = name
            sys.modules[name] = package
    locations = [str((root / rel).parent)] if rel.endswith("__init__.py") else None
    spec = importlib.util.spec_from_file_location(
        dotted, root / rel, submodule_search_locations=locations
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {rel}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[dotted] = module
    sys.path.insert(0, str(root))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[dotted]
        raise
    finally:
        sys.path.remove(str(root))
    return module


def import_file(root: Path, rel: str, tops: Sequence[str]) -> Any:
    """Forget earlier copies, then load file ``rel`` of the checkout at ``root`` directly."""
    _purge(tops)
    importlib.invalidate_caches()
    return _load_file(root, rel, tops)


def import_trainer(root: Path, tops: Sequence[str]) -> Any:
    """The fixture trainer of the checkout at ``root``, its network loaded from its file.

    The trainer imports ``from src.npu.networks.patch.patch_network import PatchNetwork``;
    the package's ``__init__`` would import OpenCV, which hdrfix does not need, so the network
    file is loaded first (:func:`_load_file`) and the import finds it.
    """
    import_file(root, FIXTURE_NETWORK, tops)
    importlib.invalidate_caches()
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(TRAINER_MODULE)
    finally:
        sys.path.remove(str(root))


@contextlib.contextmanager
def no_bytecode() -> Iterator[None]:
    """Importing from the bundled fixture itself must leave no __pycache__ there."""
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before
