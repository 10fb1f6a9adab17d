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
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrfix import __version__
from hdrfix.core.changes import FileChange, decoded, unified_diff
from hdrfix.core.errors import HdrfixError
from hdrfix.core.sourcefile import SourceFile, sha256

FOLDER = ".hdrfix"
JOURNAL = f"{FOLDER}/journal.json"
LOCK = f"{FOLDER}/lock"
FORMAT = 2  # 1: one entry per apply, its phases reverted together; still read

_SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
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
                    "id": {"type": "integer", "minimum": 1},
                    "apply": {"type": "integer", "minimum": 1},
                    "action": {"const": "apply"},
                    "phases": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                    },
                    "time": {"type": "string"},
                    "hdrfix": {"type": "string"},
                    "files": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": _RECORD,
                    },
                    "reverted": {"type": "string"},
                    "undone": {"type": "string"},
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
        if not (root / JOURNAL).exists():
            return cls(SourceFile.new(root, JOURNAL), [])
        source = SourceFile.read(root, JOURNAL)
        try:
            data = json.loads(source.text)
        except ValueError as exc:
            line = getattr(exc, "lineno", None)
            raise HdrfixError(
                "is not a journal hdrfix can read (not JSON)",
                JOURNAL,
                line,
                hint="restore it from version control or delete it",
            ) from None
        _validate(data)
        return cls(source, data["entries"])

    def active(self) -> list[dict[str, Any]]:
        """The entries neither reverted by hdrfix nor found undone outside it."""
        return [e for e in self.entries if not e.get("reverted") and not e.get("undone")]

    def record(self, steps: list[tuple[str, list[FileChange]]]) -> FileChange:
        """The journal's own change: one entry per phase of an apply that changed files."""
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
        return base64.b64decode(record["pre_image"])
    return str(record["pre_image"]).encode("utf-8")


def _validate(data: Any) -> None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(SCHEMA).iter_errors(data))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise HdrfixError(
            f"is not a journal hdrfix can read: {where.lstrip('.') or 'the top level'}: "
            f"{error.message}",
            JOURNAL,
            hint="restore it from version control or delete it",
        )
    ids = [e["id"] for e in data["entries"]]
    if len(set(ids)) != len(ids):
        raise HdrfixError(
            "is not a journal hdrfix can read: two entries share an id",
            JOURNAL,
            hint="restore it from version control or delete it",
        )
