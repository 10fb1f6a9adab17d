"""Running phases over a repository: plan every phase in memory, then hand back one change set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hdrfix.changes import FileChange
from hdrfix.errors import HdrfixError
from hdrfix.plugin import Phase, PhasePlan, resolve
from hdrfix.repo import Repo


@dataclass
class Run:
    plans: list[PhasePlan]
    changes: list[FileChange]


def plan_run(
    repo: Repo,
    requested: list[str],
    phases: Mapping[str, type[Phase]],
    options: Mapping[str, Any],
    with_deps: bool = False,
) -> Run:
    """Plan ``requested`` phases in dependency order, each seeing the edits of those before it."""
    order = resolve(requested, phases, with_deps)
    _check_requirements(repo, order, phases, options)
    plans = []
    for name in order:
        plan = phases[name]().plan(repo, options)
        stage(repo, plan)
        plans.append(plan)
    return Run(plans, [FileChange(source, new) for source, new in repo.changed()])


def stage(repo: Repo, plan: PhasePlan) -> None:
    """Fold a phase's planned edits into the in-memory repo, for the phases after it."""
    for rel, text in plan.text_edits.items():
        repo.set_text(rel, text)
    for rel, ref, fn in plan.function_edits:
        repo.python(rel).replace(ref, fn)


def _check_requirements(
    repo: Repo, order: list[str], phases: Mapping[str, type[Phase]], options: Mapping[str, Any]
) -> None:
    for name in order:
        for dep in phases[name].requires:
            if dep in order:
                continue
            if dep not in phases:
                raise HdrfixError(f"{name} requires {dep!r}, which is not installed")
            state = phases[dep]().plan(repo, options)
            if state.state != "applied":
                missing = "; ".join(f"{i.where} {i.what}" for i in state.missing[:3])
                detail = f" (missing: {missing})" if state.state == "partial" and missing else ""
                raise HdrfixError(
                    f"{name} requires {dep}, which is {state.state} in this repo{detail}",
                    str(repo.root),
                    hint=f"run `hdrfix apply {dep} {name}` or add --with-deps",
                )


def status(
    repo: Repo, phases: Mapping[str, type[Phase]], options: Mapping[str, Any]
) -> list[PhasePlan]:
    """Each phase's state as read from the files, every phase against the same unedited repo."""
    plans = []
    for name in resolve(sorted(phases), phases, with_deps=False):
        try:
            plans.append(phases[name]().plan(repo, options))
        except HdrfixError as exc:
            plans.append(PhasePlan(name, error=str(exc)))
    return plans
