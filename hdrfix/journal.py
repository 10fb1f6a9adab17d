"""``.hdrfix/journal.json``: what each apply changed, so that ``revert`` can take it back.

The journal is plain JSON meant to be read by people (and committed or ignored, as a team
prefers). Each entry records the phases applied together, when, by which hdrfix, and per file
the SHA-256 before and after, the pre-image (the whole file before), and the reverse diff.
It is written in the same all-or-nothing write as the files it describes.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrfix import __version__
from hdrfix.changes import FileChange, unified_diff
from hdrfix.errors import HdrfixError
from hdrfix.sourcefile import SourceFile, sha256

FOLDER = ".hdrfix"
JOURNAL = f"{FOLDER}/journal.json"
LOCK = f"{FOLDER}/lock"
FORMAT = 1


@dataclass
class Journal:
    source: SourceFile
    entries: list[dict[str, Any]]

    @classmethod
    def load(cls, root: Path) -> Journal:
        if not (root / JOURNAL).exists():
            return cls(SourceFile.new(root, JOURNAL), [])
        source = SourceFile.read(root, JOURNAL)
        try:
            data = json.loads(source.text)
            entries = data["entries"]
            assert isinstance(entries, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise HdrfixError(
                "is not a journal hdrfix can read",
                JOURNAL,
                hint="restore it from version control or delete it",
            ) from None
        return cls(source, entries)

    def active(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if not e.get("reverted")]

    def record(self, phases: list[str], changes: list[FileChange]) -> FileChange:
        """The journal's own change: a new entry for an apply of ``phases``."""
        entry = {
            "id": max((e["id"] for e in self.entries), default=0) + 1,
            "action": "apply",
            "phases": phases,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "hdrfix": __version__,
            "files": {c.rel: _file_record(c) for c in changes},
        }
        return self._with(self.entries + [entry])

    def mark_reverted(self, entry_ids: set[int]) -> FileChange:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        entries = [dict(e, reverted=stamp) if e["id"] in entry_ids else e for e in self.entries]
        return self._with(entries)

    def _with(self, entries: list[dict[str, Any]]) -> FileChange:
        text = json.dumps({"format": FORMAT, "entries": entries}, indent=2, ensure_ascii=False)
        return FileChange(self.source, text + "\n")


def _file_record(change: FileChange) -> dict[str, Any]:
    raw = change.source.raw
    try:
        pre_image, kind = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pre_image, kind = base64.b64encode(raw).decode("ascii"), "base64"
    return {
        "sha256_before": change.source.digest,
        "sha256_after": sha256(change.new_bytes),
        "pre_image_encoding": kind,
        "pre_image": pre_image,
        "reverse_diff": unified_diff(change.rel, change.new_text, change.source.text),
    }


def pre_image(record: dict[str, Any]) -> bytes:
    if record["pre_image_encoding"] == "base64":
        return base64.b64decode(record["pre_image"])
    return str(record["pre_image"]).encode("utf-8")
