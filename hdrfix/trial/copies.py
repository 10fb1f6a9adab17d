"""One scratch copy of the user's repository per variant, patched exactly as ``hdrfix apply``.

The copy holds the repository's git-tracked Python and YAML files; the phases go through the
engine's one write path (``plan_run`` + ``commit_run``) with the options ``apply`` would use:
the command line's common options over the repository's own ``.hdrfix.toml``. Unlike
``validate``, nothing is excluded behind the user's back: a phase that refuses (phase2 while
the inference code is neither included nor excluded) stops the run with its own one line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdrfix.lang.errors import HdrfixError
from hdrfix.validate.network import copy_sources

if TYPE_CHECKING:
    from hdrfix.core.plugin import Phase
    from hdrfix.validate.variants import Variant


@dataclass
class Copy:
    variant: Variant
    root: Path
    changed: list[str]


def apply_options(
    repo: Path, registry: Mapping[str, type[Phase]], given: Mapping[str, Any]
) -> dict[str, Any]:
    """The options ``hdrfix apply`` would plan with: the flags over the project config.

    Phase flags are not offered by trial: each phase sees its declared options as None
    (its defaults), or the project config's values.
    """
    from hdrfix.core import projectconfig
    from hdrfix.core.repo import Repo

    _, settings = projectconfig.load(Repo(repo).root, registry)
    return projectconfig.merged(settings, {**given, "phase_options": {}})


def _in_copy(repo: Path, copy: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """Path options point into the user's repository (or the current folder); the phases must
    read and write the copy, so each becomes the same file in the copy."""
    from hdrfix.core.projectconfig import PATHS
    from hdrfix.core.repo import Repo
    from hdrfix.kit.targets import repo_rel

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


def make_copy(
    repo: Path,
    variant: Variant,
    registry: Mapping[str, type[Phase]],
    options: Mapping[str, Any],
    tmp: Path,
) -> Copy:
    """A copy of ``repo`` under ``tmp`` with ``variant``'s phases applied."""
    from hdrfix.core.engine import commit_run, plan_run
    from hdrfix.core.repo import Repo

    root = copy_sources(repo, tmp / re.sub(r"[^A-Za-z0-9_.-]", "_", variant.name))
    if not variant.phases:
        return Copy(variant, root, [])
    opts = {**_in_copy(repo, root, options), "repo": root}
    try:
        run = plan_run(Repo(root), list(variant.phases), registry, opts)
    except HdrfixError as exc:
        # the same refusal apply would give, told about the user's files, not the copy's
        path = exc.path
        if path and Path(path).is_absolute() and Path(path).is_relative_to(root):
            path = str(Path(path).relative_to(root))
        raise HdrfixError(exc.message, path, exc.line, hint=exc.hint) from None
    commit_run(root, run, "apply " + " ".join(variant.phases))
    return Copy(variant, root, [change.rel for change in run.changes])
