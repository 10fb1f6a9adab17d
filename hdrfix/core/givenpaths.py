"""Paths the user gave on the command line (``--framework``, ``--config``...), made relative
to the repository: checked to lie inside it, and recorded so in the journal for revert."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hdrfix.lang.errors import HdrfixError

if TYPE_CHECKING:
    from hdrfix.core.repo import Repo


def repo_rel(repo: Repo, given: str) -> str:
    """A path given on the command line, relative to the repo root if it lies inside it."""
    path = given if os.path.isabs(given) else os.path.join(os.getcwd(), given)
    if not os.path.exists(path) and not os.path.isabs(given):
        path = os.path.join(repo.root, given)
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(repo.root))
    if rel.startswith(".."):
        raise HdrfixError("is outside the repository", given, hint="pass a file inside --repo")
    if not os.path.isfile(path):
        raise HdrfixError("no such file", given, hint="check the path")
    return rel.replace(os.sep, "/")


_KEYS = ("framework", "network", "config", "include", "exclude")


def recorded(repo: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """The run's target options as paths relative to the repository, for the journal."""
    out: dict[str, Any] = {}
    for key in _KEYS:
        value = options.get(key)
        if not value:
            continue
        if isinstance(value, str):
            out[key] = repo_rel(repo, value)
        else:
            out[key] = [repo_rel(repo, v) for v in value]
    return out
