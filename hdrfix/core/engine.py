"""Running phases over a repository: plan every phase in memory, then hand back one change set."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hdrfix.core.changes import FileChange
from hdrfix.core.givenpaths import recorded
from hdrfix.core.linemap import LineMap, error_on_disk, on_disk
from hdrfix.core.plugin import Phase, PhasePlan, resolve
from hdrfix.core.repo import Repo
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.sourcefile import SourceFile


@dataclass
class Run:
    plans: list[PhasePlan]
    changes: list[FileChange]
    # per phase, the files it changed, from the text before it to the text after it
    steps: list[tuple[str, list[FileChange]]] = field(default_factory=list)
    # the target options the run was planned with, repo-relative (recorded for revert)
    targets: dict[str, Any] = field(default_factory=dict)


def plan_run(
    repo: Repo,
    requested: list[str],
    phases: Mapping[str, type[Phase]],
    options: Mapping[str, Any],
    with_deps: bool = False,
) -> Run:
    """Plan ``requested`` phases in dependency order, each seeing the edits of those before it."""
    with _no_collection():
        return _plan_run(repo, requested, phases, options, with_deps)


@contextmanager
def _no_collection() -> Iterator[None]:
    """Planning builds hundreds of thousands of syntax-tree nodes that live until it ends, and
    Python's cycle collector walked them over and over: 15% of a dry-run on a 3,000-line
    trainer. Planning makes little cyclic garbage; it is collected when planning ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plan_run(
    repo: Repo,
    requested: list[str],
    phases: Mapping[str, type[Phase]],
    options: Mapping[str, Any],
    with_deps: bool,
) -> Run:
    order = resolve(requested, phases, with_deps)
    _check_requirements(repo, order, phases, options)
    plans = []
    steps = []
    texts: dict[str, str] = {}
    for name in order:
        # what a phase says, it says of the text the phases before it left: renumber it
        maps = _line_maps(repo, texts)
        try:
            plan = phases[name]().plan(repo, options_for(options, phases[name]))
        except HdrfixError as exc:
            raise error_on_disk(exc, maps) from None
        on_disk(plan, maps)
        if plan.refusal is not None:
            raise plan.refusal
        _refuse_undeclared(plan, phases[name])
        stage(repo, plan)
        plans.append(plan)
        now = {source.rel: new for source, new in repo.changed()}
        step = []
        for rel in sorted(set(now) | set(texts)):
            source = repo.source(rel)
            old, new = texts.get(rel, source.text), now.get(rel, source.text)
            if new != old:
                step.append(FileChange(source if old == source.text else _at(source, old), new))
            texts[rel] = new
        steps.append((name, step))
    changes = [FileChange(source, new) for source, new in repo.changed()]
    check_edits(changes)
    return Run(plans, changes, steps, recorded(repo, options))


def _line_maps(repo: Repo, texts: Mapping[str, str]) -> dict[str, LineMap]:
    return {
        rel: LineMap(repo.source(rel).text, text)
        for rel, text in texts.items()
        if text != repo.source(rel).text
    }


def options_for(options: Mapping[str, Any], phase: type[Phase]) -> dict[str, Any]:
    """What ``phase`` sees: the common options, and its own under their declared names.

    The CLI passes each phase's values in ``phase_options``; a declared option not given is
    None there, so a phase option called ``config`` never sees ``--config``. A mapping without
    ``phase_options`` (a test's or a benchmark's literal) is passed to every phase as it is.
    """
    if "phase_options" not in options:
        return dict(options)
    common = {k: v for k, v in options.items() if k != "phase_options"}
    declared = dict.fromkeys((o.name for o in phase.options), None)
    return {**common, **declared, **options["phase_options"].get(phase.name, {})}


def _at(source: SourceFile, text: str) -> SourceFile:
    """``source`` as an earlier phase of this run left it."""
    return replace(source, raw=source.encode(text), text=text)


def commit_run(root: Path, run: Run, action: str) -> None:
    """Write a planned run and its journal entries: the path apply and validate share."""
    from hdrfix.core.commit import commit
    from hdrfix.core.journal import Journal

    if run.changes:
        record = Journal.load(root).record(run.steps, run.targets)
        commit(root, run.changes + [record], action)


def check_edits(changes: list[FileChange]) -> None:
    """No phase can opt out: every edited Python file still parses, and every statement a
    phase inserted or rewrote reads only names assigned on every path to it."""
    from hdrfix.core.changes import verify_parses
    from hdrfix.lang.assigned import violations

    verify_parses(changes)
    for change in changes:
        if not change.rel.endswith(".py"):
            continue
        found = violations(change.source.text, change.new_text)
        if found:
            first = found[0]
            lines = change.new_text.splitlines()
            statement = lines[first.line - 1].strip() if 0 < first.line <= len(lines) else ""
            raise HdrfixError(
                f"{first.message()}: `{statement}`",
                change.rel,
                first.line,
                hint=f"hdrfix refused its edit and wrote nothing; write that statement by hand "
                f"where {first.name!r} is bound on every path",
            )


def _refuse_undeclared(plan: PhasePlan, phase: type[Phase]) -> None:
    """A phase writes only the kinds of file it declares: revert and recovery trust no record
    naming another kind, so an apply that wrote one could not be taken back."""
    for rel in [*plan.text_edits, *(rel for rel, _, _ in plan.function_edits)]:
        if not rel.endswith(phase.writes):
            raise HdrfixError(
                f"{plan.phase} planned an edit of a kind of file it does not declare "
                f"(writes = {phase.writes!r})",
                rel,
                hint="declare the suffix in the phase's `writes`; nothing was written",
            )


def stage(repo: Repo, plan: PhasePlan) -> None:
    """Fold a phase's planned edits into the in-memory repo, for the phases after it."""
    for rel, text in plan.text_edits.items():
        if rel.endswith(".py"):
            # A whole-file text would silently drop every function edit made before it.
            raise HdrfixError(
                f"{plan.phase} planned a whole-text edit of a Python file",
                rel,
                hint="a phase edits Python per function (plan.function_edits), so that edits "
                "of one file by several phases compose",
            )
        repo.set_text(rel, text)
    edited = set()
    for rel, ref, fn in plan.function_edits:
        pyfile = repo.python(rel)
        if pyfile.is_edited(ref):
            raise HdrfixError(
                f"{plan.phase} planned two separate edits of {ref.qualname}",
                rel,
                ref.line,
                hint="a phase must merge its edits of one function into one",
            )
        pyfile.replace(ref, fn)
        edited.add(rel)
    for rel in sorted(edited):
        repo.restage(rel)


def _check_requirements(
    repo: Repo, order: list[str], phases: Mapping[str, type[Phase]], options: Mapping[str, Any]
) -> None:
    for name in order:
        for dep in phases[name].requires:
            if dep in order:
                continue
            if dep not in phases:
                raise HdrfixError(f"{name} requires {dep!r}, which is not installed")
            state = phases[dep]().plan(repo, options_for(options, phases[dep]))
            if state.state != "applied":
                missing = "; ".join(f"{i.where} {i.what}" for i in state.missing[:3])
                detail = f" (missing: {missing})" if state.state == "partial" and missing else ""
                raise HdrfixError(
                    f"{name} requires {dep}, which is {state.state} in this repo{detail}",
                    str(repo.root),
                    hint=f"run `hdrfix apply {dep} {name}` or add --with-deps",
                )


def status(
    repo: Repo,
    phases: Mapping[str, type[Phase]],
    options: Mapping[str, Any],
    names: list[str] | None = None,
) -> list[PhasePlan]:
    """The state of each phase (or of ``names``) as read from the files, each against the
    same unedited repo."""
    plans = []
    for name in resolve(sorted(names or phases), phases, with_deps=False):
        try:
            plan = phases[name]().plan(repo, options_for(options, phases[name]))
            if plan.refusal is not None:
                plan.notes.append(f"apply would stop here: {plan.refusal}")
            plans.append(plan)
        except HdrfixError as exc:
            plans.append(PhasePlan(name, error=str(exc)))
    return plans
