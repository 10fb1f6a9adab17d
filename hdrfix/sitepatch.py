"""Applying one change at every log-domain site of the framework (and of ``--include`` files).

A phase supplies a *site patcher*: ``done(site)`` tells whether a site already has the change
(patched by hand counts), ``edit(site)`` returns the :class:`FunctionEdit` that makes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from hdrfix.cst_edit import FunctionEdit
from hdrfix.errors import HdrfixError
from hdrfix.logdomain import Site
from hdrfix.plugin import Item, PhasePlan
from hdrfix.repo import Repo


class SitePatcher(Protocol):
    def done(self, site: Site) -> bool: ...

    def edit(self, site: Site) -> FunctionEdit: ...


def plan_sites(
    plan: PhasePlan, repo: Repo, options: Mapping[str, Any], what: str, patcher: SitePatcher
) -> None:
    from hdrfix.cst_lines import FunctionLines
    from hdrfix.targets import site_files, sites_in

    files = site_files(repo, options)
    for rel in files.patched:
        found = sites_in(repo, rel)
        if not found:
            raise HdrfixError(
                "no log-domain reconstruction found (exp of log image + residual)",
                rel,
                hint="point at the trainer with --framework FILE",
            )
        for ref, fn, sites in found:
            lines = FunctionLines(ref, fn)
            edit = FunctionEdit()
            for site in sites:
                line = lines.line(site.compute.stmt)
                label = f"{ref.qualname}: {what}"
                if patcher.done(site):
                    plan.done(rel, line, label)
                else:
                    plan.todo(rel, line, label)
                    edit.merge(patcher.edit(site))
            if edit:
                plan.function_edits.append((rel, ref, edit.apply(fn)))
    for rel in files.others:
        for ref, fn, sites in sites_in(repo, rel):
            lines = FunctionLines(ref, fn)
            for site in sites:
                if not patcher.done(site):
                    plan.not_patched.append(
                        Item(rel, lines.line(site.compute.stmt), f"{ref.qualname}: {what}", False)
                    )
