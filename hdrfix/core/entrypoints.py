"""Third-party phases' entry points, read straight from the installed distributions'
``entry_points.txt``: ``importlib.metadata`` imports the ``email`` package to parse every
distribution's metadata (about 13 ms, a third of ``hdrfix --help``), and discovery needs only
one section of one small file per distribution. ``tests/test_entrypoints.py`` checks that the
result is the one ``importlib.metadata.entry_points`` gives."""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EntryPoint:
    name: str
    value: str  # ``module:attr.attr``, as in entry_points.txt

    def load(self) -> Any:
        module, _, attrs = self.value.partition(":")
        obj: Any = importlib.import_module(module.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points in ``group`` of every distribution on sys.path; a distribution found
    twice counts once, from the first sys.path entry, as in importlib.metadata."""
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for folder in sys.path:
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            continue
        for entry in names:
            stem, dot, kind = entry.rpartition(".")
            if not dot or kind not in ("dist-info", "egg-info"):
                continue
            dist = _normalized(stem.split("-")[0])
            if dist in seen:
                continue
            seen.add(dist)
            found += _read(os.path.join(folder or ".", entry, "entry_points.txt"), group)
    return found


def _read(path: str, group: str) -> list[EntryPoint]:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return []
    if f"[{group}]" not in text:  # most distributions: no need to parse the file
        return []
    # importlib.metadata's own reading (its ``Sectioned``): stripped lines, ``#`` comments,
    # ``[section]`` headers, ``name = value`` pairs. configparser, used here before, cost
    # 2 ms of every ``--help`` to import and refused files importlib.metadata reads.
    found, section = [], None
    for line in filter(None, map(str.strip, text.splitlines())):
        if line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group and "=" in line:
            name, value = line.split("=", 1)
            found.append(EntryPoint(name.strip(), value.strip()))
    return found


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()
