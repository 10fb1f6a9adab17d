"""Taking back recorded applies.

Each file's journal entries form a stack, oldest at the bottom. Reading it from the top down
against the file as it is now tells, per entry, whether its edit is *in effect* (the file is
at the entry's recorded after-hash, or at the before-hash of the entry above it), *undone* (the
file is at its before-hash: ``git checkout`` took it back), or *edited* since (neither).

Reverting an entry in effect restores its pre-image, checked against its recorded hash first.
Entries in effect above it (independent later phases) are kept by a three-way merge of their
edits onto that pre-image, and their records are rewritten to match; when their edits touch the
same lines, the revert is refused with the order that works. An edited file needs
``--force-structural``, which takes back only hdrfix's hunks, found by their context.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrfix.core.changes import FileChange, decoded, verify_parses
from hdrfix.core.journal import JOURNAL, Journal, apply_of, file_record, pre_image, stamp
from hdrfix.core.patchapply import PatchConflict, apply_diff
from hdrfix.core.plugin import Phase, kinds, unknown_phase
from hdrfix.core.safepath import out_of_reach, readable, writable
from hdrfix.core.targets_now import phase_targets
from hdrfix.core.threeway import merge
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.sourcefile import SourceFile, sha256

IN_EFFECT, UNDONE, EDITED = "in effect", "undone outside hdrfix", "edited since"


@dataclass
class RevertPlan:
    changes: list[FileChange]
    journal: FileChange | None
    entries: list[dict[str, Any]] = field(default_factory=list)  # taken back now
    undone: list[dict[str, Any]] = field(default_factory=list)  # found undone already
    nothing: str | None = None  # why there is nothing to do


@dataclass
class _Layer:
    entry: dict[str, Any]
    state: str
    after: bytes | None = None  # the file with this entry's edit, known for entries in effect


def plan_revert(
    root: Path, names: list[str], phases: Mapping[str, type[Phase]], force_structural: bool
) -> RevertPlan:
    journal = Journal.load(root)
    for name in names:
        # a phase no longer installed may still be recorded (and is reverted from the record);
        # a name neither installed nor recorded is a typo, said as every command says it
        if name not in phases and not any(name in e["phases"] for e in journal.entries):
            raise unknown_phase(name, phases)
    active = in_effect_again(root, journal) + journal.active()
    selected = _select(journal, active, names)
    if isinstance(selected, str):
        return RevertPlan([], None, nothing=selected)
    _refuse_dependents(active, selected, phases)
    ids = {e["id"] for e in selected}
    rewritten: dict[int, dict[str, Any]] = {}
    changes = []
    undone_files: dict[int, set[str]] = {i: set() for i in ids}
    targets: dict[str, set[str]] = {}
    for rel in sorted({rel for e in selected for rel in e["files"]}):
        _refuse_foreign(root, rel, [e for e in selected if rel in e["files"]], phases, targets)
        source = SourceFile.read(root, rel) if (root / rel).exists() else SourceFile.new(root, rel)
        stack = file_stack(source, [e for e in active if rel in e["files"]])
        new = _revert_file(rel, source, stack, ids, rewritten, force_structural)
        for layer in stack:
            if layer.entry["id"] in ids and layer.state == UNDONE:
                undone_files[layer.entry["id"]].add(rel)
        if new is not None and new != source.raw:
            changes.append(FileChange(source, decoded(source, new)))
    verify_parses(changes)  # a merge of two phases' edits is checked like any edit
    undone = [e for e in selected if undone_files[e["id"]] == set(e["files"])]
    reverted = [e for e in selected if e not in undone]
    undone_ids, reverted_ids = {e["id"] for e in undone}, {e["id"] for e in reverted}
    entries = []
    for entry in journal.entries:
        if entry["id"] in undone_ids:
            entry = stamp(entry, "undone")
        elif entry["id"] in reverted_ids:
            entry = stamp({k: v for k, v in entry.items() if k != "undone"}, "reverted")
        elif entry["id"] in rewritten:
            entry = rewritten[entry["id"]]
        entries.append(entry)
    return RevertPlan(changes, journal.updated(entries), reverted, undone)


def _select(
    journal: Journal, active: list[dict[str, Any]], names: list[str]
) -> list[dict[str, Any]] | str:
    """The entries to take back, or why there are none (which is not an error)."""
    if not names:
        if not active:
            return "nothing to do: no apply recorded in the journal is in effect"
        last = max(apply_of(e) for e in active)
        return [e for e in active if apply_of(e) == last]
    selected = [e for e in active if set(e["phases"]) & set(names)]
    for name in names:
        if any(name in e["phases"] for e in selected):
            continue
        if not any(name in e["phases"] for e in journal.entries):
            raise HdrfixError(
                f"{name} has no apply recorded in the journal",
                JOURNAL,
                hint="a phase applied by hand or by another tool is reverted "
                "by hand (e.g. git checkout)",
            )
    if not selected:
        return f"nothing to do: {', '.join(names)} already reverted"
    for entry in selected:
        others = sorted(set(entry["phases"]) - set(names))
        if others:  # a format-1 entry records several phases as one
            raise HdrfixError(
                f"{', '.join(entry['phases'])} were applied together (journal entry {entry['id']})",
                JOURNAL,
                hint=f"revert them together: hdrfix revert {' '.join(entry['phases'])}",
            )
    return selected


def file_stack(source: SourceFile, entries: list[dict[str, Any]]) -> list[_Layer]:
    """The entries touching one file, newest first, each with its state (see the module)."""
    cursor: bytes | None = source.raw if source.exists else None
    layers = []
    ordered = sorted(entries, key=lambda e: e["id"], reverse=True)
    for i, entry in enumerate(ordered):
        record = entry["files"][source.rel]
        # what the file was before each older entry: a checkout back past several
        older = {e["files"][source.rel]["sha256_before"] for e in ordered[i + 1 :]}
        digest = None if cursor is None else sha256(cursor)
        if digest == record["sha256_after"]:
            before = pre_image(record)
            if sha256(before) != record["sha256_before"]:
                raise HdrfixError(
                    f"the recorded pre-image of {source.rel} (journal entry {entry['id']}) does "
                    "not match its sha256_before",
                    JOURNAL,
                    hint="the journal was altered; restore it from version control (nothing "
                    "was changed)",
                )
            layers.append(_Layer(entry, IN_EFFECT, cursor))
            cursor = before
        elif digest is not None and (digest == record["sha256_before"] or digest in older):
            layers.append(_Layer(entry, UNDONE))
        else:
            layers.append(_Layer(entry, EDITED))
            cursor = None  # below an edit, nothing can be told by hash
    return layers


def _revert_file(
    rel: str,
    source: SourceFile,
    stack: list[_Layer],
    ids: set[int],
    rewritten: dict[int, dict[str, Any]],
    force_structural: bool,
) -> bytes | None:
    """The file's bytes with the selected entries taken out; None when there is nothing to do."""
    mine = [layer for layer in stack if layer.entry["id"] in ids]
    if all(layer.state == UNDONE for layer in mine):
        return None
    if any(layer.state == EDITED for layer in mine):
        return _structural(rel, source, mine, force_structural)
    bottom = max(i for i, layer in enumerate(stack) if layer.entry["id"] in ids)
    base = pre_image(stack[bottom].entry["files"][rel])
    for layer in reversed(stack[:bottom]):
        if layer.state != IN_EFFECT or layer.entry["id"] in ids:
            continue
        assert layer.after is not None  # in effect: its after is known
        record = layer.entry["files"][rel]
        merged = merge(pre_image(record), base, layer.after)
        if merged is None:
            later = "+".join(layer.entry["phases"])
            raise HdrfixError(
                f"{later} (journal entry {layer.entry['id']}) edited the same lines of this "
                "file since",
                rel,
                hint=f"revert {later} first, or both at once: hdrfix revert {later} "
                f"{' '.join(p for m in mine for p in m.entry['phases'])} (nothing was changed)",
            )
        entry = rewritten.setdefault(layer.entry["id"], _copy(layer.entry))
        entry["files"][rel] = file_record(source, base, merged)
        base = merged
    return base


def _structural(rel: str, source: SourceFile, mine: list[_Layer], force_structural: bool) -> bytes:
    if not force_structural:
        raise HdrfixError(
            "was edited since hdrfix wrote it",
            rel,
            hint="commit or stash your edits and revert, or use --force-structural to take "
            "back only hdrfix's edit (nothing was changed)",
        )
    text = source.text
    for layer in mine:  # newest first
        if layer.state == UNDONE:
            continue
        try:
            text = apply_diff(text, layer.entry["files"][rel]["reverse_diff"])
        except PatchConflict as exc:
            raise HdrfixError(
                f"cannot take back hdrfix's edit: {exc}",
                rel,
                exc.line,
                "revert this file by hand; nothing was changed",
            ) from None
    return source.encode(text)


def _refuse_foreign(
    root: Path,
    rel: str,
    entries: list[dict[str, Any]],
    phases: Mapping[str, type[Phase]],
    targets: dict[str, set[str]],
) -> None:
    """The journal is untrusted: revert writes only a file its phases could have written, a
    path hdrfix may write (:mod:`hdrfix.core.safepath`) of a kind those phases write, among
    the files they target now (:mod:`hdrfix.core.targets_now`; ``targets`` caches them)."""
    writable(root, rel, JOURNAL)
    for entry in entries:
        missing = [p for p in entry["phases"] if p not in phases]
        if missing:
            raise HdrfixError(
                f"journal entry {entry['id']} records {', '.join(missing)}, which is not "
                "installed, so hdrfix cannot tell which files it writes",
                JOURNAL,
                hint="install the phase (or pass --plugins) and revert again; nothing was changed",
            )
        why = out_of_reach(rel, kinds(phases, entry["phases"]), "+".join(entry["phases"]))
        if not why:
            # cached by what is planned, not by entry: a journal of 3,000 entries of one
            # phase planned it 3,000 times (minutes)
            key = json.dumps([entry["phases"], entry.get("targets")], sort_keys=True)
            if key not in targets:
                targets[key] = phase_targets(root, entry, phases)
            if rel not in targets[key]:
                why = f"is not among the files {'+'.join(entry['phases'])} targets here"
        if why:
            raise HdrfixError(
                f"journal entry {entry['id']} names {rel}, which {why}",
                JOURNAL,
                hint="hdrfix does not act on it; restore the journal from version control "
                "(nothing was changed)",
            )


def in_effect_again(root: Path, journal: Journal) -> list[dict[str, Any]]:
    """Entries once found undone outside hdrfix whose every file is again at the bytes the
    entry wrote (``git stash pop`` after a revert that found them stashed away)."""
    back = []
    for entry in journal.entries:
        if entry.get("reverted") or not entry.get("undone"):
            continue
        try:
            digests = [
                sha256((root / rel).read_bytes()) if readable(root, rel) else None
                for rel in entry["files"]
            ]
        except OSError:
            continue
        if digests == [r["sha256_after"] for r in entry["files"].values()]:
            back.append({k: v for k, v in entry.items() if k != "undone"})
    return back


def _copy(entry: dict[str, Any]) -> dict[str, Any]:
    return dict(entry, files=dict(entry["files"]))


def _refuse_dependents(
    active: list[dict[str, Any]],
    selected: list[dict[str, Any]],
    phases: Mapping[str, type[Phase]],
) -> None:
    names = {p for e in selected for p in e["phases"]}
    for entry in active:
        if entry in selected:
            continue
        for phase in entry["phases"]:
            needs = set(phases[phase].requires) if phase in phases else set()
            blocking = sorted(needs & names)
            if blocking:
                raise HdrfixError(
                    f"{phase} is applied and requires {', '.join(blocking)}",
                    JOURNAL,
                    hint=f"revert both: hdrfix revert {' '.join(blocking)} {phase}",
                )


def entry_states(root: Path, journal: Journal) -> dict[int, str]:
    """Each active entry's state as the files now show it, for ``status``."""
    active = in_effect_again(root, journal) + journal.active()
    states: dict[int, set[str]] = {e["id"]: set() for e in active}
    rels = sorted({rel for e in active for rel in e["files"]})
    for rel in rels:
        if os.path.lexists(root / rel) and not readable(root, rel):
            continue  # a folder, a FIFO, a link out: no state to read, and nothing to block on
        try:
            source = (
                SourceFile.read(root, rel) if (root / rel).exists() else SourceFile.new(root, rel)
            )
        except HdrfixError:
            continue
        entries = [e for e in active if rel in e["files"]]
        try:
            stack = file_stack(source, entries)
        except HdrfixError:
            for entry in entries:
                states[entry["id"]].add("journal altered")
            continue
        for layer in stack:
            states[layer.entry["id"]].add(layer.state)
    return {i: _summary(s) for i, s in states.items()}


def _summary(states: set[str]) -> str:
    if len(states) == 1:
        return next(iter(states))
    if "journal altered" in states:
        return "journal altered"
    if EDITED in states:
        return EDITED
    return "partly undone outside hdrfix"
