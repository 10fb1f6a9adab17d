"""The safety net after an edit: the edited text must parse to the old data with exactly the
intended changes.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from ruamel.yaml.comments import CommentedMap

from hdrfix.lang.yamledit.loading import YamlEditError, load_all
from hdrfix.lang.yamledit.queries import MISSING
from hdrfix.lang.yamledit.values import Scalar, _is_bool, _merged, _own_keys


def _verify(
    old_docs: list[Any],
    new_text: str,
    path: str,
    overrides: dict[tuple[int, Any], Scalar],
    additions: dict[int, dict[str, Scalar]],
) -> None:
    """Safety net: the edited text must parse to the old data with exactly our edits applied."""
    try:
        new_docs = load_all(new_text, path)
    except YamlEditError as exc:
        raise YamlEditError(
            f"internal error: the edited YAML does not parse ({exc.message})",
            path,
            exc.line,
            "edit this file by hand and report the bug",
        ) from None
    expected = [_Canon(overrides, additions).of(doc) for doc in old_docs]
    actual = [_Canon({}, {}).of(doc) for doc in new_docs]
    if expected != actual:
        raise YamlEditError(
            "internal error: the edited YAML does not hold the intended data",
            path,
            1,
            "edit this file by hand and report the bug",
        )


class _Canon:
    """Comparable form of parsed documents as they read after ``overrides`` and ``additions``.

    Types stay apart (True is not 1, "6" is not 6, 6 is not 6.0); key order does not matter.
    Always finite, because load_all refuses recursive aliases.
    """

    def __init__(
        self,
        overrides: dict[tuple[int, Any], Scalar],
        additions: dict[int, dict[str, Scalar]],
    ) -> None:
        self.overrides = overrides  # (id(owner mapping), key) -> new value
        self.additions = additions  # id(mapping) -> keys added to it

    def of(self, node: Any) -> Hashable:
        if isinstance(node, CommentedMap):
            keys = dict.fromkeys([*node.keys(), *self._added_keys(node)])
            return ("map", frozenset((self.of(k), self.of(self._resolve(node, k))) for k in keys))
        if isinstance(node, Mapping):
            return ("map", frozenset((self.of(k), self.of(v)) for k, v in node.items()))
        if isinstance(node, (list, tuple)):
            return ("seq", tuple(self.of(v) for v in node))
        if isinstance(node, AbstractSet):
            return ("set", frozenset(self.of(v) for v in node))
        if _is_bool(node):
            return ("bool", bool(node))
        if isinstance(node, int):
            return ("int", int(node))
        if isinstance(node, float):
            return ("float", "nan" if math.isnan(node) else float(node))
        if isinstance(node, str):
            return ("str", str(node))
        if node is None:
            return ("null",)
        return ("other", type(node).__name__, str(node))

    def _added_keys(self, mapping: CommentedMap) -> Iterable[str]:
        """Keys added to ``mapping`` itself or to a mapping it merges."""
        yield from self.additions.get(id(mapping), {})
        for base in _merged(mapping):
            yield from self._added_keys(base)

    def _resolve(self, mapping: CommentedMap, key: Any) -> Any:
        """``mapping[key]`` after the edits by YAML's precedence: own keys, then merges in order."""
        if key in _own_keys(mapping):
            return self.overrides.get((id(mapping), key), mapping[key])
        if key in self.additions.get(id(mapping), {}):
            return self.additions[id(mapping)][key]
        for base in _merged(mapping):
            value = self._resolve(base, key)
            if value is not MISSING:
                return value
        return MISSING
