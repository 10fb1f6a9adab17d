"""Importing the user's trainer from a patched copy and building it from the repo's own config.

Every assumption here is one the ``hdrfix trial --help`` text states: the trainer file is the
one ``apply`` patches, the trainer class is the class in it defining ``training_step``; its
constructor is filled by :mod:`hdrfix.trial.constructor`.
"""

from __future__ import annotations

import ast
import contextlib
import copy as copying
import importlib
import importlib.machinery
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrfix.lang.errors import HdrfixError
from hdrfix.trial.constructor import SECTION_ALIASES
from hdrfix.trial.trainer_source import DEFAULT_MODE_KEY

#: The network width trial trains at, so a cell takes seconds on a CPU.
SMALL_CHANNELS = 4


@dataclass(frozen=True)
class Trainer:
    """Where the user's trainer lives: its file in the repo, its class, its config file."""

    rel: str
    class_name: str
    config_rel: str


def find_trainer(repo: Path, options: Mapping[str, Any]) -> Trainer:
    """The trainer file and class ``apply`` would patch, and the config it would edit."""
    from hdrfix.core.repo import Repo
    from hdrfix.kit.targets import DEFAULT_CONFIG, config_files, framework_file

    the_repo = Repo(repo)
    rel = framework_file(the_repo, options)
    tree = ast.parse((the_repo.root / rel).read_text(encoding="utf-8"))
    classes = [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(f, ast.FunctionDef) and f.name == "training_step" for f in node.body)
    ]
    if len(classes) != 1:
        found = "no class" if not classes else f"{len(classes)} classes"
        raise HdrfixError(
            f"{found} defining training_step",
            rel,
            hint="point --framework at the trainer, or pass --trainer-factory module:function",
        )
    configs = config_files(the_repo, options)
    default = the_repo.canonical(DEFAULT_CONFIG)
    return Trainer(rel, classes[0], default if default in configs else configs[0])


def load_config(
    root: Path, trainer: Trainer, mode: str, mode_key: Sequence[str] = DEFAULT_MODE_KEY
) -> dict[str, Any]:
    """The repo's config with the mode at ``mode_key`` (the key the trainer reads it from,
    ``normalization.type`` by default) and a small network."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load((root / trainer.config_rel).read_text("utf-8"))
    config = copying.deepcopy(data) if isinstance(data, dict) else {}
    *sections, last = mode_key
    holder = config
    for name in sections:  # a section that is absent or not a mapping becomes one
        child = holder.get(name)
        holder[name] = dict(child) if isinstance(child, dict) else {}
        holder = holder[name]
    holder[last] = mode
    for name in SECTION_ALIASES["model"]:
        if isinstance(config.get(name), dict):
            config[name]["base_channels"] = SMALL_CHANNELS
    return config


@contextlib.contextmanager
def stubbed(names: Sequence[str]) -> Iterator[list[str]]:
    """Empty modules for ``--stub-module`` names the environment lacks (the installed ones are
    used as they are; a ``None`` entry in sys.modules, Python's mark of a blocked import, counts
    as lacking); yields the names stubbed, and puts sys.modules back as it was afterwards."""
    made = []
    before: dict[str, Any] = {}
    for name in names:
        if name in sys.modules:
            if sys.modules[name] is not None:
                continue
            before[name] = None
        elif importlib.util.find_spec(name) is not None:
            continue
        stub = types.ModuleType(name)
        stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
        stub.__doc__ = "empty stand-in (hdrfix trial --stub-module)"
        sys.modules[name] = stub
        made.append(name)
    try:
        yield made
    finally:
        for name in made:
            sys.modules.pop(name, None)
            if name in before:
                sys.modules[name] = before[name]


def import_trainer(root: Path, trainer: Trainer) -> Any:
    """The trainer's module from the copy at ``root``, with the repo root and the trainer's
    folder on sys.path, as the field's scripts run it. The caller restores sys.path."""
    from hdrfix.validate.importing import _dotted

    folder = str((root / trainer.rel).parent)
    sys.path[:0] = [str(root), folder]
    importlib.invalidate_caches()
    dotted = _dotted(trainer.rel) or Path(trainer.rel).stem
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        missing = (exc.name or str(exc)).split(".")[0]
        raise HdrfixError(
            f"importing the trainer needs module {missing!r}, which is not installed",
            trainer.rel,
            hint=f"install it, or pass --stub-module {missing} if the trained code does not use it",
        ) from None
    except Exception as exc:  # the user's code: any failure is one line
        raise HdrfixError(
            f"importing the trainer fails ({type(exc).__name__}: {exc})", trainer.rel
        ) from None


def user_function(spec: str, flag: str) -> Callable[..., Any]:
    """``module:function`` from the current folder or the installed packages."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise HdrfixError(f"{flag} {spec!r} is not module:function", hint=f"e.g. {flag} mine:make")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.append(str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HdrfixError(
            f"{flag} {spec}: cannot import {module_name} ({exc})",
            hint="run from the folder that holds it, or put it on PYTHONPATH",
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise HdrfixError(f"{flag} {spec}: {module_name} has no function {name!r}")
    return function
