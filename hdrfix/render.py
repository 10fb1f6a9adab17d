"""What the commands print: summaries for people, JSON for machines."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hdrfix.lang.errors import shown

if TYPE_CHECKING:  # `list --format json` renders declarations and needs no engine
    from hdrfix.core.engine import Run
    from hdrfix.core.plugin import Item, Phase, PhasePlan
    from hdrfix.core.revert import RevertPlan


def colorize(diff: str) -> str:
    out = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            out.append(f"\x1b[1m{line.rstrip(chr(10))}\x1b[0m\n")
        elif line.startswith("@@"):
            out.append(f"\x1b[36m{line.rstrip(chr(10))}\x1b[0m\n")
        elif line.startswith("+"):
            out.append(f"\x1b[32m{line.rstrip(chr(10))}\x1b[0m\n")
        elif line.startswith("-"):
            out.append(f"\x1b[31m{line.rstrip(chr(10))}\x1b[0m\n")
        else:
            out.append(line)
    return "".join(out)


def run_summary(run: Run, mode: str, verbose: bool = False) -> Iterator[str]:
    for plan in run.plans:
        todo = plan.missing
        if mode == "apply":
            verb = "applied" if todo else "already applied"
        else:
            verb = f"would change {len(todo)} item(s)" if todo else "already applied"
        if plan.unhandled:  # never "already applied" while a site waits for the user's hand
            by_hand = f"{len(plan.unhandled)} item(s) to edit by hand"
            verb = f"{verb}, except {by_hand}" if todo else f"partly applied: {by_hand}"
        if plan.state == "not applicable":
            verb = "nothing to do (no targets)"
        yield f"{plan.phase}: {verb}"
        for item in plan.items if verbose else todo:
            yield f"  {'ok ' if item.done else ''}{item.where}  {item.what}"
        yield from _notes(plan)
    files = ", ".join(shown(c.rel) for c in run.changes)
    if mode == "apply" and run.changes:
        yield f"wrote {len(run.changes)} file(s): {files}"
    elif mode == "check" and run.changes:
        yield f"would change {len(run.changes)} file(s): {files}"
    elif not run.changes:
        yield "no changes"


def _notes(plan: PhasePlan) -> Iterator[str]:
    for note in plan.notes:
        yield f"  note: {note}"
    for item in plan.not_patched:
        yield f"  not patched: {item.where}  {item.what}  (add --include {item.path})"
    for item in plan.unhandled:
        yield f"  not handled: {item.where}  {item.what}  (edit it by hand)"


def status_lines(
    plans: list[PhasePlan], entries: list[dict[str, Any]], states: Mapping[int, str]
) -> Iterator[str]:
    for plan in plans:
        yield f"{plan.phase}: {plan.state}" + (f": {plan.error}" if plan.error else "")
        for item in plan.items:
            mark = "ok " if item.done else "-- "
            yield f"  {mark}{item.where}  {item.what}"
        yield from _notes(plan)
    for entry in entries:
        yield (
            f"journal #{entry['id']}: {'+'.join(entry['phases'])} applied {entry['time']} "
            f"by hdrfix {entry['hdrfix']}, {len(entry['files'])} file(s), "
            f"{entry_state(entry, states)}"
        )


def entry_state(entry: dict[str, Any], states: Mapping[int, str]) -> str:
    if entry.get("reverted"):
        return f"reverted {entry['reverted']}"
    if entry.get("undone"):
        return f"found undone outside hdrfix {entry['undone']}"
    return states.get(entry["id"], "in effect")


def revert_lines(plan: RevertPlan) -> Iterator[str]:
    if plan.entries:
        ids = ", ".join(f"#{e['id']} ({'+'.join(e['phases'])})" for e in plan.entries)
        files = ", ".join(shown(c.rel) for c in plan.changes) or "no file"
        yield f"reverted journal entry {ids}: {files}"
    for entry in plan.undone:
        yield (
            f"journal entry #{entry['id']} ({'+'.join(entry['phases'])}) was already undone "
            "outside hdrfix; recorded as such"
        )


def _item(item: Item) -> dict[str, Any]:
    return {"path": item.path, "line": item.line, "what": item.what, "done": item.done}


def _plan_json(plan: PhasePlan) -> dict[str, Any]:
    return {
        "phase": plan.phase,
        "state": plan.state,
        "items": [_item(i) for i in plan.items],
        "not_patched": [_item(i) for i in plan.not_patched],
        "not_handled": [_item(i) for i in plan.unhandled],
        "notes": plan.notes,
        "error": plan.error,
    }


def run_json(run: Run, mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "phases": [_plan_json(p) for p in run.plans],
        "files": [c.rel for c in run.changes],
        "written": mode == "apply" and bool(run.changes),
        # the unified diff the text output prints (apply's diff is the one written)
        "diff": "".join(c.diff() for c in run.changes),
    }


def revert_json(plan: RevertPlan, dry_run: bool) -> dict[str, Any]:
    return {
        "mode": "dry-run" if dry_run else "revert",
        "entries": [{"id": e["id"], "phases": list(e["phases"])} for e in plan.entries],
        "files": [c.rel for c in plan.changes],
        "undone_outside": [e["id"] for e in plan.undone],
        "nothing": plan.nothing,
        "written": not dry_run and not plan.nothing,
        "diff": "".join(c.diff() for c in plan.changes),
    }


def status_json(
    plans: list[PhasePlan], entries: list[dict[str, Any]], states: Mapping[int, str]
) -> dict[str, Any]:
    journal = [
        {k: e.get(k) for k in ("id", "apply", "phases", "time", "hdrfix", "reverted", "undone")}
        | {"files": sorted(e["files"]), "state": entry_state(e, states)}
        for e in entries
    ]
    return {"phases": [_plan_json(p) for p in plans], "journal": journal}


def phases_json(phases: list[type[Phase]]) -> list[dict[str, Any]]:
    return [
        {
            "phase": p.name,
            "requires": list(p.requires),
            "summary": p.summary,
            "options": [
                {
                    "name": o.name,
                    "help": o.help,
                    "type": getattr(o.type, "__name__", str(o.type)),
                    "choices": list(o.choices),
                }
                for o in p.options
            ],
        }
        for p in phases
    ]
