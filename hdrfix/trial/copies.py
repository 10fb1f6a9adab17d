"""One scratch copy of the user's repository per variant, patched exactly as ``hdrfix apply``.

The copy holds the repository's git-tracked Python and YAML files; the phases go through the
engine's one write path (``plan_run`` + ``commit_run``) with the options ``apply`` would use:
the command line's common options over the repository's own ``.hdrfix.toml``. Unlike
``validate``, nothing is excluded behind the user's back: a phase that refuses (phase2 while
the inference code is neither included nor excluded) stops the run with its own one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdrfix.patchedcopy import apply_in_copy, copy_sources, paths_into, slug

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


def make_copy(
    repo: Path,
    variant: Variant,
    registry: Mapping[str, type[Phase]],
    options: Mapping[str, Any],
    tmp: Path,
) -> Copy:
    """A copy of ``repo`` under ``tmp`` with ``variant``'s phases applied."""
    root = copy_sources(repo, tmp / slug(variant.name))
    if not variant.phases:
        return Copy(variant, root, [])
    changed = apply_in_copy(root, variant.phases, registry, paths_into(repo, root, options))
    return Copy(variant, root, changed)
