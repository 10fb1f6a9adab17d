"""The items a phase plans for the settings it adds to a trainer's ``__init__``, and the edit
adding those that are missing: found there with ``ast``
(:mod:`hdrfix.kit.settingreads`), added with libcst (:mod:`hdrfix.kit.trainersetting`),
which a run that finds them all never imports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hdrfix.kit.settingreads import Read, assigned_line, settings_mapping

if TYPE_CHECKING:
    from hdrfix.core.plugin import PhasePlan
    from hdrfix.core.repo import Repo


def plan_reads(
    plan: PhasePlan, repo: Repo, rel: str, class_name: str, reads: Sequence[Read]
) -> bool:
    """One item per read in ``class_name.__init__``, and the edit adding the missing ones.

    Returns False (and plans nothing) when the class has no ``__init__`` reading the section.
    Where every read is there already, it says so without libcst.
    """
    pyfile = repo.python(rel)
    ref = pyfile.function(f"{class_name}.__init__")
    if ref is None:
        return False
    if not pyfile.is_edited(ref):
        init = pyfile.node(ref)
        lines = [assigned_line(pyfile, init, read.key) for read in reads]
        if settings_mapping(pyfile, init) is not None and None not in lines:
            for read, line in zip(reads, lines):
                plan.done(rel, line, f"{class_name}.__init__ reads {read.key}")
            return True
    from hdrfix.kit.trainersetting import plan_missing_reads

    return plan_missing_reads(plan, pyfile, rel, ref, class_name, reads)
