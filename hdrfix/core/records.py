"""Reading hdrfix's own records (the journal, the intent) as the untrusted input they are.

Both arrive with the repository (the journal is meant to be committed), so a record may be
large, deeply nested, of the wrong shape or hostile. Reading is bounded (size before reading,
nesting while parsing), the shape is checked with a JSON Schema, and every path is checked by
:func:`hdrfix.core.safepath.record_path` before anyone looks at the tree. Every failure is one
line naming the record, never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import posixpath
import re
from pathlib import Path
from typing import Any

from hdrfix.core.safepath import record_path
from hdrfix.lang.errors import HdrfixError

MAX_BYTES = 512 * 2**20  # a journal holds whole pre-images: far above any config or trainer
MAX_DEPTH = 8  # the deepest a record hdrfix writes goes is 5

SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
BASE64 = {"type": "string", "pattern": r"^[A-Za-z0-9+/]*={0,2}$"}
_ACTION = r"^(apply|revert)( [0-9A-Za-z_.-]{1,64}){0,32}$"
_TMP = re.compile(r"^\.(?P<name>[^/\x00]+)\.[0-9a-f]{8}\.hdrfix-tmp$")

INTENT_SCHEMA = {
    "type": "object",
    "required": ["format", "action", "direction", "files"],
    "properties": {
        "format": {"const": 1},
        "action": {"type": "string", "pattern": _ACTION},
        "direction": {"enum": ["forward", "back"]},
        "seal": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "files": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["path", "tmp", "sha256_before", "sha256_after", "pre_image"],
                "additionalProperties": False,
                "properties": {
                    "path": {"type": "string", "maxLength": 4096},
                    "tmp": {"type": "string", "pattern": _TMP.pattern},
                    "sha256_before": {"oneOf": [SHA, {"type": "null"}]},
                    "sha256_after": SHA,
                    "pre_image": {"oneOf": [BASE64, {"type": "null"}]},
                },
            },
        },
    },
}


def parse(root: Path, rel: str, what: str) -> Any:
    """The JSON in ``rel``, read within the bounds; ``what`` names the record in messages."""
    path = root / rel
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise HdrfixError(
            f"cannot read {what} ({exc.strerror})", rel, hint="nothing was changed"
        ) from None
    if size > MAX_BYTES:
        raise HdrfixError(
            f"is not {what} hdrfix can read: {size} bytes, over the {MAX_BYTES} it reads",
            rel,
            hint="restore it from version control or delete it (nothing was changed)",
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HdrfixError(
            f"is not {what} hdrfix can read ({exc})", rel, hint="nothing was changed"
        ) from None
    return loads(text, rel, what)


def loads(text: str, rel: str, what: str) -> Any:
    try:
        data = json.loads(text)
    except RecursionError:
        data = _TOO_DEEP
    except ValueError as exc:
        raise HdrfixError(
            f"is not {what} hdrfix can read (not JSON)",
            rel,
            getattr(exc, "lineno", None),
            hint="restore it from version control or delete it",
        ) from None
    if data is _TOO_DEEP or _depth(data) > MAX_DEPTH:
        raise HdrfixError(
            f"is not {what} hdrfix can read: nested deeper than {MAX_DEPTH} levels",
            rel,
            hint="restore it from version control or delete it (nothing was changed)",
        )
    return data


_TOO_DEEP = object()


def _depth(data: Any) -> int:
    """How deeply ``data`` nests, without recursion (a schema check would recurse)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def check_shape(data: Any, schema: dict[str, Any], rel: str, what: str) -> None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        raise HdrfixError(
            f"is not {what} hdrfix can read: {where.lstrip('.') or 'the top level'}: {message}",
            rel,
            hint="restore it from version control or delete it",
        )


def decode64(text: str, rel: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HdrfixError(
            f"holds a pre-image of {what} that is not valid base64",
            rel,
            hint="the record was altered; restore it from version control (nothing was changed)",
        ) from None


def intent_files(data: Any, rel: str, own: frozenset[str]) -> list[dict[str, Any]]:
    """The intent's file records, each checked in shape, path and form; ``own`` lists the
    state files (the journal) a commit also writes."""
    check_shape(data, INTENT_SCHEMA, rel, "a commit record")
    files: list[dict[str, Any]] = data["files"]
    for record in files:
        path = record["path"]
        if path not in own:
            record_path(path, rel)
        match = _TMP.match(record["tmp"])
        if match is None or match.group("name") != posixpath.basename(path):
            raise HdrfixError(
                f"gives {path!r} the temporary file {record['tmp']!r}, which is not its own",
                rel,
                hint="hdrfix does not act on it; delete it after checking the files with git",
            )
        if (record["sha256_before"] is None) != (record["pre_image"] is None):
            raise HdrfixError(
                f"records {path!r} with a pre-image but no hash before, or the reverse",
                rel,
                hint="hdrfix does not act on it; delete it after checking the files with git",
            )
        if record["pre_image"] is not None:
            record["pre_image"] = decode64(record["pre_image"], rel, path)
    return files
