"""What a parsed value is: which mapping defines a key (itself or, through ``<<`` merges, an
anchored one), its kind for messages, and whether a new scalar equals it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from ruamel.yaml.comments import CommentedMap, merge_attrib
from ruamel.yaml.scalarbool import ScalarBoolean

Scalar = bool | int | float | str


def _kind(value: Any) -> str:
    """'a mapping', 'a number', ... for messages."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a sequence"
    if isinstance(value, AbstractSet):
        return "a set"
    if value is None:
        return "null"
    if _is_bool(value):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"


def _merged(mapping: CommentedMap) -> list[CommentedMap]:
    """Mappings merged into ``mapping`` by ``<<``, earliest (highest precedence) first."""
    return list(getattr(mapping, merge_attrib, []))


def _own_keys(mapping: CommentedMap) -> AbstractSet[Any]:
    """Keys the mapping defines itself; ruamel keeps them as ``_ok`` (rebuilding is O(n))."""
    own = getattr(mapping, "_ok", None)
    if isinstance(own, AbstractSet):
        return own
    return {key for key, _ in mapping.non_merged_items()}


def _owner(mapping: Any, key: Any) -> CommentedMap | None:
    """The mapping whose text defines ``mapping[key]``: itself or, through merges, an anchor."""
    if not isinstance(mapping, CommentedMap):
        return None
    if key in _own_keys(mapping):
        return mapping
    for base in _merged(mapping):
        owner = _owner(base, key)
        if owner is not None:
            return owner
    return None


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, ScalarBoolean))


def same_value(current: Any, new: Scalar) -> bool:
    """Whether writing ``new`` would change nothing (6 == 6.0; quoting does not matter)."""
    if _is_bool(new) or _is_bool(current):
        return _is_bool(new) and _is_bool(current) and bool(new) == bool(current)
    if isinstance(new, (int, float)):
        if not isinstance(current, (int, float)):
            return False
        both_nan = isinstance(current, float) and math.isnan(current) and math.isnan(new)
        return both_nan or current == new
    return isinstance(current, str) and str(current) == new
