"""Who else reads a value hdrfix edits: anchors, aliases and ``<<`` merges make one written
mapping the data of several places, and an edit must change the section asked for and nothing
else (issue 19.10: a merge base shared with ``fast:`` was edited, and ``fast`` changed too).

Each place of a document that holds a mapping is an *occurrence* of it: where it is written,
and every alias of it. A mapping *reads* a key from the mapping that defines it (itself, or a
merge base, see :func:`values._owner`). An edit at the defining mapping is seen by every
occurrence of every mapping that reads the key from it; it is allowed when each of those is
the section itself or a *template*.

A template is an anchored mapping where it is written as a top-level entry
(``base: &base``, ``.defaults: &defaults``): it exists to be merged or aliased, so an anchor
whose every alias lies in the section is the section's own template and is edited where it is
defined (the file keeps one source for the value). hdrfix assumes that no trainer reads such a
template under its own name.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from hdrfix.lang.yamledit.values import _merged, _owner


@dataclass(frozen=True)
class Occurrence:
    mapping: CommentedMap
    path: tuple[Any, ...]  # keys (and sequence indexes) from the document's root
    line: int  # 1-based line of the key (or item) holding it; 1 for the root
    template: bool

    @property
    def name(self) -> str:
        return ".".join(map(str, self.path)) or "the document"


def occurrences(doc: Any) -> list[Occurrence]:
    """Every place of ``doc`` holding a mapping, aliases expanded (their number is bounded by
    the alias-bomb check of :func:`loading.load_all`)."""
    found: list[Occurrence] = []
    written: set[int] = set()  # mappings met once already: later meetings are aliases

    def visit(node: Any, path: tuple[Any, ...], line: int) -> None:
        if isinstance(node, CommentedMap):
            first = id(node) not in written
            written.add(id(node))
            # a base written inside '<<:' is met there: an alias of it later is no template
            written.update(id(base) for base in _merged(node))
            anchored = node.anchor.value is not None
            found.append(Occurrence(node, path, line, first and anchored and len(path) == 1))
            for key, value in node.items():  # a merged key's value is read here too
                visit(value, (*path, key), _line(node.lc.key, key, line))
        elif isinstance(node, CommentedSeq):
            for i, value in enumerate(node):
                visit(value, (*path, i), _line(node.lc.item, i, line))

    visit(doc, (), 1)
    return found


def _line(where: Any, key: Any, fallback: int) -> int:
    try:
        return int(where(key)[0]) + 1
    except (KeyError, IndexError, TypeError):
        return fallback


def readers(found: list[Occurrence], owner: CommentedMap, key: Any) -> Iterator[Occurrence]:
    """The occurrences whose ``key`` is the one ``owner`` defines."""
    return (o for o in found if _owner(o.mapping, key) is owner)


def sharers(found: list[Occurrence], mapping: CommentedMap) -> Iterator[Occurrence]:
    """The occurrences that would see a key added to ``mapping``: itself and its merges."""
    return (o for o in found if o.mapping is mapping or _merges(o.mapping, mapping))


def _merges(mapping: CommentedMap, base: CommentedMap) -> bool:
    return any(b is base or _merges(b, base) for b in _merged(mapping))


def others(seen: Iterator[Occurrence], sections: Collection[tuple[Any, ...]]) -> list[Occurrence]:
    """Those of ``seen`` that are neither one of the sections being edited nor a template."""
    return [o for o in seen if o.path not in sections and not o.template]
