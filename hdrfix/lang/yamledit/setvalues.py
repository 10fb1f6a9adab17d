"""Setting a section's keys to new values: find the sections, plan the edits, apply them and
verify the result.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from ruamel.yaml.comments import CommentedMap

from hdrfix.lang.yamledit.edits import _insertions, _value_edits
from hdrfix.lang.yamledit.loading import YamlEditError, load_all
from hdrfix.lang.yamledit.narrow import LARGE, _narrow, _shifted
from hdrfix.lang.yamledit.queries import MISSING, get
from hdrfix.lang.yamledit.sharing import Occurrence, occurrences, others, readers, sharers
from hdrfix.lang.yamledit.tokens import _apply, _Edit, _Tokens
from hdrfix.lang.yamledit.values import Scalar, _kind, _owner, same_value
from hdrfix.lang.yamledit.verify import _verify


def set_values(
    text: str,
    path: str,
    section: str,
    values: dict[str, Scalar],
    *,
    add_missing: bool = True,
    holding: str | None = None,
    along: tuple[str, ...] = (),
) -> str:
    """Return ``text`` with ``section``'s keys set to ``values``, changing only those values.

    ``section`` may be dotted ("model.normalization"). Every document holding the section (and,
    if given, whose section holds the key ``holding``) is edited; the others are left alone. A
    key absent from the section is added when ``add_missing`` (block mapping: a new line after
    the section's last entry, indented like its siblings, ending like the line before it; flow
    mapping: ``, key: value`` after the last entry) and skipped otherwise. See the module
    docstring for quoting, comments, anchors and merges. ``along`` names the other sections
    being set to the same values (two nested ``normalization`` sections aliasing one mapping):
    a value only they and ``section`` read is edited where it is defined.

    Raises YamlEditError when no document holds the section, when the section or a key's
    current value is not what can be edited (a non-mapping section, a non-scalar value, an
    anchored/tagged/block scalar, a mapping another section also reads), and, as a safety net,
    when the edited text does not parse to exactly the intended data.
    """
    for key, value in values.items():
        if not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"{key}: expected bool, int, float or str, got {type(value).__name__}")
    # 1 == 1.0 == True as keys of the cache: the types and spellings tell them apart
    spelled = tuple((type(v).__name__, repr(v)) for v in values.values())
    args = (text, path, section, tuple(values.items()), spelled, add_missing, holding, tuple(along))
    return _edited.__wrapped__(*args) if len(text) > LARGE else _edited(*args)


@functools.lru_cache(maxsize=64)
def _edited(
    text: str,
    path: str,
    section: str,
    items: tuple[tuple[str, Scalar], ...],
    spelled: tuple[tuple[str, str], ...],
    add_missing: bool,
    holding: str | None,
    along: tuple[str, ...],
) -> str:
    """The edit, made once per process for a text of ordinary size (a large one is not kept):
    every phase of a run, and every run of a test session, sets the same values in the same
    configs. Errors are not kept (they are raised again)."""
    start, end, lines = _narrow(text, path, section)
    part = text[start:end]
    sections = {tuple(p.split(".")) for p in (section, *along)}
    values = dict(items)
    new = _shifted(
        lines, lambda: _set_values(part, path, section, values, add_missing, holding, sections)
    )
    return text[:start] + new + text[end:]


def _set_values(
    text: str,
    path: str,
    section: str,
    values: dict[str, Scalar],
    add_missing: bool,
    holding: str | None,
    where: set[tuple[str, ...]],
) -> str:
    docs = load_all(text, path)
    found = _find_sections(docs, section, path, holding)
    tokens = _Tokens(text, path)
    edits: list[_Edit] = []
    overrides: dict[tuple[int, Any], Scalar] = {}  # (id(owner mapping), key) -> new value
    additions: dict[int, dict[str, Scalar]] = {}  # id(section mapping) -> added keys
    for doc, sec in found:
        # without an alias no mapping is read in two places (and the walk is spared)
        seen = occurrences(doc) if "*" in text else []
        missing: dict[str, Scalar] = {}
        for key, value in values.items():
            owner = _owner(sec, key)
            if owner is None:
                if add_missing:
                    missing[key] = value
                continue
            current = owner[key]
            if isinstance(current, (Mapping, list, tuple, AbstractSet)):
                raise YamlEditError(
                    f"{section}.{key} is {_kind(current)}, expected a scalar",
                    path,
                    owner.lc.key(key)[0] + 1,
                    "make it a single value or edit it by hand",
                )
            if same_value(current, value) or (id(owner), key) in overrides:
                continue
            outside = others(readers(seen, owner, key), where)
            if outside and owner is sec:
                raise _shared(seen, sec, section, key, outside[0], path)
            if outside:
                # Split the merge: a key of the section's own overrides the shared base,
                # which stays as the other readers know it.
                missing[key] = value
                continue
            overrides[(id(owner), key)] = value
            edits.extend(_value_edits(tokens, owner, key, value, path))
        shared = others(sharers(seen, sec), where) if missing else []
        if shared:  # a key added to the section would be added there too
            raise _shared(seen, sec, section, next(iter(missing)), shared[0], path)
        if missing:
            additions[id(sec)] = missing
            edits.extend(_insertions(tokens, sec, missing, path))
    if not edits:
        return text  # nothing differs: no churn, not even a re-parse
    new_text = _apply(text, edits, path)
    _verify(docs, new_text, path, overrides, additions)
    return new_text


def _shared(
    seen: list[Occurrence],
    sec: CommentedMap,
    section: str,
    key: str,
    other: Occurrence,
    path: str,
) -> YamlEditError:
    """The one-line refusal of an edit that would change ``other`` however it is written."""
    anchor = sec.anchor.value or "x"
    # the first occurrence is where it is written (none: written inside a '<<:')
    written = next((o for o in seen if o.mapping is sec), None)
    if written is not None and written.path == tuple(section.split(".")):
        # ``normalization: &n`` itself, aliased elsewhere
        hint = (
            f"move its keys to a top-level mapping '&{anchor}' that {section} and "
            f"{other.name} both merge ('<<: *{anchor}')"
        )
    else:
        hint = f"write {section} as a mapping of its own ('<<: *{anchor}' and its own keys)"
    return YamlEditError(
        f"{section} is shared with {other.name} through &{anchor}: setting {section}.{key} "
        f"would change {other.name} too",
        path,
        other.line,
        f"{hint}, then rerun",
    )


def _find_sections(
    docs: list[Any], section: str, path: str, holding: str | None
) -> list[tuple[Any, CommentedMap]]:
    """(document, section mapping) of every document holding one (holding ``holding``, if
    given)."""
    found: list[tuple[Any, CommentedMap]] = []
    for doc in docs:
        node = get(doc, section)
        if node is MISSING or (holding is not None and get(node, holding) is MISSING):
            continue
        if not isinstance(node, CommentedMap):
            parent = get(doc, section.rpartition(".")[0]) if "." in section else doc
            leaf = section.rpartition(".")[2]
            raise YamlEditError(
                f"'{section}' is {_kind(node)}, expected a mapping",
                path,
                _owner(parent, leaf).lc.key(leaf)[0] + 1,  # type: ignore[union-attr]
                "make it a mapping of keys and values",
            )
        found.append((doc, node))
    if not found:
        holds = f" holding '{holding}'" if holding else ""
        raise YamlEditError(
            f"no '{section}' mapping{holds} in any YAML document",
            path,
            _nearest_line(docs, section),
            f"add a '{section}:' section or choose another file",
        )
    return found


def _nearest_line(docs: list[Any], section: str) -> int:
    """1-based line of the deepest existing mapping on the way to ``section`` (1 if none)."""
    line = 1
    for doc in docs:
        node = doc
        for part in section.split("."):
            if not isinstance(node, CommentedMap):
                break
            line = node.lc.line + 1
            if part not in node:
                return line
            node = node[part]
    return line
