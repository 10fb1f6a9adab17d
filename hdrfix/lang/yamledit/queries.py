"""Reading values from parsed documents by dotted key, and finding the sections of a file
that hold a key.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

from hdrfix.lang.yamledit.loading import load_all
from hdrfix.lang.yamledit.narrow import _narrow


class Missing(enum.Enum):
    """Type of :data:`MISSING`, what :func:`get` returns for an absent key (falsy)."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = Missing.MISSING


def get(data: Any, dotted: str) -> Any | Missing:
    """Value at ``dotted`` ("model.normalization.type"), looking through merge keys; or MISSING."""
    node = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def has_key(text: str, path: str, dotted: str) -> bool:
    """Whether any document of ``text`` holds ``dotted``, e.g. "normalization.log_delta_abs_max"."""
    start, end, _ = _narrow(text, path, dotted)
    return any(get(doc, dotted) is not MISSING for doc in load_all(text[start:end], path))


def sections(
    text: str, path: str, dotted: str, *, holding: str | None = None
) -> list[tuple[Any, int]]:
    """The value at ``dotted`` in each document that has one (and, if given, whose value holds
    the key ``holding``), each with the number of lines before the text parsed.

    Line numbers from a mapping's ``.lc`` plus that offset are lines of ``text``.
    """
    start, end, lines = _narrow(text, path, dotted)
    found = [get(doc, dotted) for doc in load_all(text[start:end], path)]
    return [
        (node, lines)
        for node in found
        if node is not MISSING and (holding is None or get(node, holding) is not MISSING)
    ]


def section(text: str, path: str, dotted: str) -> tuple[Any, int]:
    """Like :func:`sections`, for the first document having ``dotted``; (MISSING, 0) if none."""
    found = sections(text, path, dotted)
    return found[0] if found else (MISSING, 0)
