"""A patched copy of a repository: what ``validate`` and ``trial`` both train on.

The copy holds the repository's git-tracked Python and YAML files, in a folder named after
the variant; the phases go through the engine's one write path (``plan_run`` then
``commit_run``), so a copy is patched exactly as ``hdrfix apply`` would patch the repository.
Path options the user gave point into the repository; :func:`paths_into` points them at the
same files in the copy, and an error about a copied file names it as the user knows it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdrfix.lang.errors import HdrfixError

if TYPE_CHECKING:
    from hdrfix.core.plugin import Phase


def slug(name: str) -> str:
    """A variant's name as a folder name (``phase1+phase2`` stays readable)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def copy_sources(src: Path, dest: Path) -> Path:
    """Copy the Python and YAML files of a repository (as its git listing sees them)."""
    from hdrfix.core.repo import Repo

    for rel in Repo(src).files((".py", ".yaml", ".yml")):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
    return dest


def paths_into(repo: Path, copy: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """Path options point into the user's repository (or the current folder); the phases must
    read and write the copy, so each becomes the same file in the copy."""
    from hdrfix.core.givenpaths import repo_rel
    from hdrfix.core.projectconfig import PATHS
    from hdrfix.core.repo import Repo

    original = Repo(repo)
    out = dict(options)
    for key, kind in PATHS.items():
        value = out.get(key)
        if not value:
            continue
        if kind is str:
            out[key] = str(copy / repo_rel(original, value))
        else:
            out[key] = tuple(str(copy / repo_rel(original, v)) for v in value)
    return out


def apply_in_copy(
    root: Path,
    phases: Sequence[str],
    registry: Mapping[str, type[Phase]],
    options: Mapping[str, Any],
) -> list[str]:
    """Apply ``phases`` to the copy at ``root`` as ``hdrfix apply`` does; the files changed.

    A refusal is the one line apply would give, with a path in the copy made relative to it,
    so that it names the user's file rather than a scratch folder."""
    from hdrfix.core.engine import commit_run, plan_run
    from hdrfix.core.repo import Repo

    if not phases:
        return []
    try:
        run = plan_run(Repo(root), list(phases), registry, {**options, "repo": root})
    except HdrfixError as exc:
        path = exc.path
        if path and Path(path).is_absolute() and Path(path).is_relative_to(root):
            path = str(Path(path).relative_to(root))
        raise HdrfixError(exc.message, path, exc.line, hint=exc.hint) from None
    commit_run(root, run, "apply " + " ".join(phases))
    return [change.rel for change in run.changes]
