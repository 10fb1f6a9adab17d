"""``.hdrfix/journal.json``: what each apply changed, so that ``revert`` can take it back.

The journal is plain JSON meant to be read by people (and committed or ignored, as a team
prefers). Each entry records one phase of one apply (``apply`` numbers the run, so that the
phases of one run can be taken back together), when, by which hdrfix, and per file the SHA-256
before and after, the pre-image (the whole file before the phase), and the reverse diff. It is
written in the same commit as the files it describes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrfix import __version__
from hdrfix.core.changes import FileChange, decoded, unified_diff
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.sourcefile import SourceFile, sha256

FOLDER = ".hdrfix"
JOURNAL = f"{FOLDER}/journal.json"
LOCK = f"{FOLDER}/lock"
FORMAT = 2  # 1: one entry per apply, its phases reverted together; still read

_SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
# JSON Schema counts 1e300 as an integer; the next id, 1e300 + 1, is 1e300 again: bounded, an
# apply always numbers its entries apart from the journal's.
_NUMBER = {"type": "integer", "minimum": 1, "maximum": 2**31}
# What status prints from an entry: no newline or terminal escape may come from the journal.
_WORD = {"type": "string", "pattern": "^[0-9A-Za-z:+._-]{1,64}$"}
_RECORD = {
    "type": "object",
    "required": ["sha256_before", "sha256_after", "pre_image_encoding", "pre_image"],
    "properties": {
        "sha256_before": _SHA,
        "sha256_after": _SHA,
        "pre_image_encoding": {"enum": ["utf-8", "base64"]},
        "pre_image": {"type": "string"},
        "reverse_diff": {"type": "string"},
    },
}
SCHEMA = {
    "type": "object",
    "required": ["format", "entries"],
    "properties": {
        "format": {"enum": [1, FORMAT]},
        "entries": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "action", "phases", "time", "hdrfix", "files"],
                "properties": {
                    "id": _NUMBER,
                    "apply": _NUMBER,
                    "action": {"const": "apply"},
                    "phases": {
                        "type": "array",
                        "items": {"type": "string", "pattern": "^[0-9A-Za-z_.-]{1,64}$"},
                        "minItems": 1,
                        # revert plans each phase named: 20,000 copies of one were hours
                        "maxItems": 64,
                        "uniqueItems": True,
                    },
                    "time": _WORD,
                    "hdrfix": _WORD,
                    "files": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": _RECORD,
                    },
                    "reverted": _WORD,
                    "undone": _WORD,
                    "targets": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "framework": {"type": "string"},
                            "network": {"type": "string"},
                            "config": {"type": "array", "items": {"type": "string"}},
                            "include": {"type": "array", "items": {"type": "string"}},
                            "exclude": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
    },
}


@dataclass
class Journal:
    source: SourceFile
    entries: list[dict[str, Any]]

    @classmethod
    def load(cls, root: Path) -> Journal:
        from hdrfix.core.records import check_shape, loads
        from hdrfix.core.safepath import state_dir

        state_dir(root)
        path = root / JOURNAL
        if path.is_symlink():
            raise HdrfixError(
                "is a symbolic link; hdrfix reads and writes its journal only as a regular file",
                JOURNAL,
                hint=f"replace the link with the file it points to ({os.readlink(path)!r}); "
                "nothing was changed",
            )
        if not path.exists():
            return cls(SourceFile.new(root, JOURNAL), [])
        if not path.is_file():  # a FIFO would block the read, a folder fail it
            raise HdrfixError(
                "is not a regular file", JOURNAL, hint="remove it; nothing was changed"
            )
        if path.stat().st_size > _max_bytes():
            raise HdrfixError(
                f"is not a journal hdrfix can read: over {_max_bytes()} bytes",
                JOURNAL,
                hint="restore it from version control or delete it (nothing was changed)",
            )
        source = SourceFile.read(root, JOURNAL)
        data = loads(source.text, JOURNAL, "a journal")
        check_shape(data, SCHEMA, JOURNAL, "a journal")
        _validate(data)
        return cls(source, data["entries"])

    def active(self) -> list[dict[str, Any]]:
        """The entries neither reverted by hdrfix nor found undone outside it."""
        return [e for e in self.entries if not e.get("reverted") and not e.get("undone")]

    def record(
        self, steps: list[tuple[str, list[FileChange]]], targets: dict[str, Any] | None = None
    ) -> FileChange:
        """The journal's own change: one entry per phase of an apply that changed files.
        ``targets``: the run's target options (``--config``...), for revert to plan again."""
        first = max((e["id"] for e in self.entries), default=0) + 1
        run = max((apply_of(e) for e in self.entries), default=0) + 1
        stamp = _now()
        added = [
            {
                "id": first + i,
                "apply": run,
                "action": "apply",
                "phases": [phase],
                "time": stamp,
                "hdrfix": __version__,
                "files": {c.rel: file_record(c.source, c.source.raw, c.new_bytes) for c in changes},
                **({"targets": targets} if targets else {}),
            }
            for i, (phase, changes) in enumerate(s for s in steps if s[1])
        ]
        return self.updated(self.entries + added)

    def updated(self, entries: list[dict[str, Any]]) -> FileChange:
        return FileChange(self.source, dumps({"format": FORMAT, "entries": entries}) + "\n")


def apply_of(entry: dict[str, Any]) -> int:
    """The apply run an entry belongs to (a format-1 entry is a run of its own)."""
    return int(entry.get("apply", entry["id"]))


def stamp(entry: dict[str, Any], key: str) -> dict[str, Any]:
    return dict(entry, **{key: _now()})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def dumps(data: Any) -> str:
    """Readable JSON (non-ASCII as it is) that is still valid UTF-8 when a file name is not:
    a name git gave undecodable bytes holds lone surrogates, written as ``\\udcXX`` escapes,
    which ``json.loads`` reads back to the same name."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def file_record(source: SourceFile, before: bytes, after: bytes) -> dict[str, Any]:
    """What revert needs to take a file from ``after`` back to ``before``."""
    try:
        pre_image, kind = before.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pre_image, kind = base64.b64encode(before).decode("ascii"), "base64"
    return {
        "sha256_before": sha256(before),
        "sha256_after": sha256(after),
        "pre_image_encoding": kind,
        "pre_image": pre_image,
        "reverse_diff": unified_diff(source.rel, decoded(source, after), decoded(source, before)),
    }


def pre_image(record: dict[str, Any]) -> bytes:
    if record["pre_image_encoding"] == "base64":
        from hdrfix.core.records import decode64

        return decode64(record["pre_image"], JOURNAL, "a file")
    return str(record["pre_image"]).encode("utf-8")


def _max_bytes() -> int:
    from hdrfix.core.records import MAX_BYTES

    return MAX_BYTES


def _validate(data: Any) -> None:
    """What a schema does not say: ids are unique, and every path is one hdrfix may write."""
    from hdrfix.core.safepath import record_path

    for entry in data["entries"]:
        for rel in entry["files"]:
            record_path(rel, JOURNAL)
        for value in entry.get("targets", {}).values():
            for rel in [value] if isinstance(value, str) else value:
                record_path(rel, JOURNAL)
    ids = [e["id"] for e in data["entries"]]
    if len(set(ids)) != len(ids):
        raise HdrfixError(
            "is not a journal hdrfix can read: two entries share an id",
            JOURNAL,
            hint="restore it from version control or delete it",
        )
