"""Taking back recorded applies: pre-images restored where the files are still as hdrfix left
them; elsewhere a refusal that says what to do, or, asked for, a context-anchored reverse patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrfix.changes import FileChange
from hdrfix.errors import HdrfixError
from hdrfix.journal import JOURNAL, Journal, pre_image
from hdrfix.patchapply import PatchConflict, apply_diff
from hdrfix.plugin import Phase
from hdrfix.sourcefile import SourceFile, sha256


@dataclass
class RevertPlan:
    changes: list[FileChange]
    journal: FileChange
    entries: list[dict[str, Any]]


def plan_revert(
    root: Path, names: list[str], phases: Mapping[str, type[Phase]], force_structural: bool
) -> RevertPlan:
    journal = Journal.load(root)
    active = journal.active()
    selected = [e for e in active if set(e["phases"]) & set(names)]
    for name in names:
        if not any(name in e["phases"] for e in selected):
            raise HdrfixError(
                f"{name} has no apply recorded in the journal",
                JOURNAL,
                hint="a phase applied by hand or by another tool is reverted "
                "by hand (e.g. git checkout)",
            )
    for entry in selected:
        others = sorted(set(entry["phases"]) - set(names))
        if others:
            raise HdrfixError(
                f"{', '.join(entry['phases'])} were applied together (journal entry {entry['id']})",
                JOURNAL,
                hint=f"revert them together: hdrfix revert {' '.join(entry['phases'])}",
            )
    _refuse_dependents(active, selected, names, phases)
    texts: dict[str, bytes] = {}
    sources: dict[str, SourceFile] = {}
    for entry in sorted(selected, key=lambda e: e["id"], reverse=True):
        for rel, record in entry["files"].items():
            if rel not in sources:
                sources[rel] = SourceFile.read(root, rel)
                texts[rel] = sources[rel].raw
            texts[rel] = _undo(rel, texts[rel], sources[rel], record, force_structural)
    changes = [
        FileChange(sources[rel], _decode(sources[rel], data))
        for rel, data in sorted(texts.items())
        if data != sources[rel].raw
    ]
    return RevertPlan(changes, journal.mark_reverted({e["id"] for e in selected}), selected)


def _refuse_dependents(
    active: list[dict[str, Any]],
    selected: list[dict[str, Any]],
    names: list[str],
    phases: Mapping[str, type[Phase]],
) -> None:
    for entry in active:
        if entry in selected:
            continue
        for phase in entry["phases"]:
            needs = set(phases[phase].requires) if phase in phases else set()
            blocking = sorted(needs & set(names))
            if blocking:
                raise HdrfixError(
                    f"{phase} is applied and requires {', '.join(blocking)}",
                    JOURNAL,
                    hint=f"revert both: hdrfix revert {' '.join(blocking)} {phase}",
                )


def _undo(
    rel: str, current: bytes, source: SourceFile, record: dict[str, Any], force_structural: bool
) -> bytes:
    if sha256(current) == record["sha256_after"]:
        return pre_image(record)
    if not force_structural:
        raise HdrfixError(
            "was edited since hdrfix wrote it",
            rel,
            hint="commit or stash your edits and revert, or use --force-structural to take "
            "back only hdrfix's edit (nothing was changed)",
        )
    text = _decode(source, current)
    try:
        return source.encode(apply_diff(text, record["reverse_diff"]))
    except PatchConflict as exc:
        raise HdrfixError(
            f"cannot take back hdrfix's edit: {exc}",
            rel,
            exc.line,
            "revert this file by hand; nothing was changed",
        ) from None


def _decode(source: SourceFile, data: bytes) -> str:
    return (
        data[len(source.bom) :].decode(source.encoding)
        if data.startswith(source.bom)
        else data.decode(source.encoding)
    )
