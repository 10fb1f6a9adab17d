"""Minimal-diff value edits on YAML text.

A plain ruamel load-and-dump rewrites ``\\u2192`` escapes, turns ``null`` into an empty
value, drops whitespace-only lines and reindents. So this module uses ruamel only to
*locate* things (the round-trip loader's ``.lc`` line/column data and the scanner's token
offsets), replaces the text of the changed values alone, and then re-parses the result and
checks it holds exactly the intended data. Every byte outside the edited values stays as it was.

Rules (see :func:`set_values`):

- A value equal to the intended one is left alone: ``6`` and ``6.0`` are equal, and so are
  ``huber``, ``'huber'`` and ``"huber"``. An unchanged file comes back byte for byte.
- The quoting style is kept: single stays single, double stays double, plain stays plain
  unless the new string needs quotes (then single quotes). Numbers and booleans are always
  written plain, as quotes would turn them into strings.
- Comment column: an inline comment after a changed value keeps its column when it can; the
  gap before ``#`` grows or shrinks by the change in value length and never drops below one
  space. (Columns are counted in characters.)
- A key that a mapping gets from a merge (``<<: *base``) is edited where it is DEFINED, in
  the anchored mapping; the alias is never touched. Every mapping that merges the same anchor
  therefore sees the new value too, which is what the definition means; the verification
  models exactly that.
- Scalar values carrying an anchor or tag, scalar aliases (``key: *x``) and block scalars
  (``|``, ``>``) are refused with a YamlEditError: editing them safely needs a human.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import math
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, merge_attrib
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.tokens import (
    AliasToken,
    AnchorToken,
    BlockEndToken,
    BlockMappingStartToken,
    BlockSequenceStartToken,
    FlowEntryToken,
    FlowMappingEndToken,
    FlowMappingStartToken,
    FlowSequenceEndToken,
    FlowSequenceStartToken,
    KeyToken,
    ScalarToken,
    TagToken,
    Token,
    ValueToken,
)

from hdrfix.core.errors import HdrfixError
from hdrfix.core.lines import NEWLINE

__all__ = [
    "ALIAS_RATIO_LIMIT",
    "MISSING",
    "Missing",
    "Scalar",
    "YamlEditError",
    "get",
    "has_key",
    "load",
    "load_all",
    "section",
    "sections",
    "set_values",
]

Scalar = bool | int | float | str

#: How many times over aliases may multiply a stream's nodes before it counts as an alias bomb.
ALIAS_RATIO_LIMIT: Final = 100

_BREAKS: Final = "\r\n\x85\u2028\u2029"  # what the YAML scanner treats as line breaks


class YamlEditError(HdrfixError):
    """Bad YAML input or an edit that cannot be made safely.

    ``str()`` is one line: ``<path>:<line>: <what is wrong>; <what to do>`` (line is 1-based).
    """


class Missing(enum.Enum):
    """Type of :data:`MISSING`, what :func:`get` returns for an absent key (falsy)."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = Missing.MISSING


# --------------------------------------------------------------------------- loading


def load_all(text: str, path: str) -> list[Any]:
    """Round-trip parse every document of ``text``.

    Raises YamlEditError for malformed YAML (with the line of ruamel's problem mark),
    duplicate keys, recursive aliases, alias bombs and nesting too deep to parse. The alias
    check streams parser events and never expands anything, so a billion-laughs document fails
    fast in bounded memory.
    Callers must not mutate the result: one run asks about the same text several times
    (is it a target? which values? edit it) and the parse is shared.
    """
    return list(_parsed(text, path))


@functools.lru_cache(maxsize=32)
def _parsed(text: str, path: str) -> tuple[Any, ...]:
    _check_aliases(text, path)
    try:
        return tuple(YAML(typ="rt").load_all(text))
    except YAMLError as exc:
        raise _syntax_error(exc, text, path) from None
    except RecursionError:
        # ruamel composes and constructs nodes recursively, a few frames per level of nesting.
        raise _too_deep(text, path) from None


def load(text: str, path: str) -> Any:
    """Round-trip parse a single-document ``text`` (None for an empty one).

    A stream of several documents is a YamlEditError; use :func:`load_all` for those.
    """
    docs = load_all(text, path)
    if len(docs) > 1:
        raise YamlEditError(
            f"holds {len(docs)} YAML documents, expected one",
            path,
            1,
            "split it into one file per document",
        )
    return docs[0] if docs else None


def _check_aliases(text: str, path: str) -> None:
    """Refuse recursive aliases, and aliases multiplying the stream's nodes ALIAS_RATIO_LIMIT-fold.

    The ratio (nodes after alias expansion / nodes as written) tells a bomb from a sweep: a
    ``&defaults`` merged into 300 experiments repeats one mapping per alias, so its ratio stays
    below the anchor's size however many experiments there are, while nested aliases multiply
    and a bomb's ratio grows exponentially with the nesting. The walk over parser events keeps
    only a size per anchor and a stack of open collections; sizes are plain integers, so even
    9**10 nodes cost nothing to count.
    """
    if "*" not in text:
        return  # no alias, nothing to expand; spares a whole parse of every config
    sizes: dict[str, int] = {}  # anchor -> nodes in its expanded subtree
    stack: list[list[Any]] = [[None, 0]]  # open collections: [anchor, expanded node count]
    written = 0
    biggest, line = 0, 1  # the alias expanding the most: where a bomb is reported
    try:
        for event in YAML(typ="safe", pure=True).parse(text):
            if isinstance(event, AliasEvent):
                if any(anchor == event.anchor for anchor, _ in stack):
                    raise YamlEditError(
                        f"alias *{event.anchor} refers to a mapping or sequence that contains it",
                        path,
                        event.start_mark.line + 1,
                        "remove the recursive alias",
                    )
                # An undefined alias counts 1 here; the composer reports it properly.
                size = sizes.get(event.anchor, 1)
                if size > biggest:
                    biggest, line = size, event.start_mark.line + 1
                written += 1
                stack[-1][1] += size
            elif isinstance(event, ScalarEvent):
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                written += 1
                stack[-1][1] += 1
            elif isinstance(event, CollectionStartEvent):
                written += 1
                stack.append([event.anchor, 1])
            elif isinstance(event, CollectionEndEvent):
                anchor, count = stack.pop()
                if anchor is not None:
                    sizes[anchor] = count
                stack[-1][1] += count
    except YAMLError as exc:
        raise _syntax_error(exc, text, path) from None
    if stack[0][1] > ALIAS_RATIO_LIMIT * written:  # stack[0] ends up counting the whole stream
        raise YamlEditError(
            f"aliases expand the {written} nodes as written more than {ALIAS_RATIO_LIMIT}-fold "
            "(alias bomb?)",
            path,
            line,
            "expand the aliases by hand or drop them",
        )


def _too_deep(text: str, path: str) -> YamlEditError:
    """The error for a stream nested too deeply for ruamel, at the line where it is deepest."""
    depth = deepest = 0
    line = 1
    with contextlib.suppress(YAMLError):  # a syntax error further on can wait for its turn
        for event in YAML(typ="safe", pure=True).parse(text):  # the parser does not recurse
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > deepest:
                    deepest, line = depth, event.start_mark.line + 1
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    return YamlEditError(
        f"mappings and sequences nest {deepest} levels deep, too deep to parse",
        path,
        line,
        "flatten the nesting, or if this is no training config pass those with --config",
    )


def _syntax_error(exc: YAMLError, text: str, path: str) -> YamlEditError:
    """Turn a ruamel error into a one-line YamlEditError at the problem's line."""
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = exc.problem or exc.context or "cannot parse"
        if exc.context and exc.problem:
            what = f"{exc.problem} ({exc.context})"
        hint = "fix the YAML at that line"
        if "duplicate key" in what:
            hint = "remove one of the duplicate keys"
        return YamlEditError(f"malformed YAML: {what}", path, line, hint)
    if isinstance(exc, ReaderError):
        line = _line_of_offset(text, exc.position)
        return YamlEditError(
            f"unacceptable character #x{exc.character:04x} in YAML",
            path,
            line,
            "remove the special character or escape it in a double-quoted string",
        )
    return YamlEditError(f"malformed YAML: {exc}", path, 1, "fix the YAML")


def _line_of_offset(text: str, offset: int) -> int:
    # Count line breaks the way the YAML scanner does: '\r\n' once, or any one of _BREAKS.
    head = text[:offset].replace("\r\n", "\n")
    return sum(head.count(ch) for ch in _BREAKS) + 1


# --------------------------------------------------------------------------- queries


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


# --------------------------------------------------------------------------- large files

# Above this size only the top-level entry holding the section is parsed: ruamel's pure-Python
# parser needs seconds per megabyte, and a 10 MB config should not cost minutes.
LARGE = 256 * 1024
_DOC_MARKER = re.compile(r"^(?:---|\.\.\.)(?:\s|$)", re.M)
_TOP_KEY = re.compile(r"^[^\s#\-?:,\[\]{}&*!|>'\"%@`][^\r\n]*?:(?:[ \t]|\r?$)", re.M)
_REFERENCES = re.compile(r"[&*][^\s,\[\]{}]|<<\s*:")


def _narrow(text: str, path: str, dotted: str) -> tuple[int, int, int]:
    """(start, end, lines before start) of the top-level entry named by ``dotted``'s first part.

    Only for large single-document block mappings whose entry for that key stands alone (no
    anchors, aliases or merges inside it, so it means the same parsed on its own); anything
    else gets ``(0, len(text), 0)``: the whole text is parsed.
    """
    whole = 0, len(text), 0
    if len(text) <= LARGE or _DOC_MARKER.search(text):
        return whole
    top = dotted.split(".")[0]
    tops = list(_TOP_KEY.finditer(text))
    named = [i for i, m in enumerate(tops) if m.group(0).split(":")[0].strip() == top]
    if len(named) != 1:
        return whole
    start = tops[named[0]].start()
    end = tops[named[0] + 1].start() if named[0] + 1 < len(tops) else len(text)
    if (start, end) == whole[:2] or _REFERENCES.search(text, start, end):
        return whole
    # The cut guesses top-level boundaries from lines alone, and a flow collection or a quoted
    # string may go on at column 0 with lines that look like keys. A cut inside one leaves it
    # unclosed in the slice, which then does not parse; the whole text is parsed instead.
    # (The slice's parse is cached for the caller.)
    try:
        docs = load_all(text[start:end], path)
    except YamlEditError:
        return whole
    if len(docs) != 1 or not isinstance(docs[0], Mapping) or top not in docs[0]:
        return whole
    return start, end, _line_of_offset(text, start) - 1


def _shifted(lines: int, call: Any) -> Any:
    """Run ``call`` on a slice of a file, reporting errors at the file's own line numbers."""
    if not lines:
        return call()
    try:
        return call()
    except YamlEditError as exc:
        raise YamlEditError(exc.message, exc.path, (exc.line or 1) + lines, exc.hint) from None


# --------------------------------------------------------------------------- editing


@dataclass(frozen=True)
class _Edit:
    """Replace ``text[start:end]`` (offsets into the original text) by ``new``."""

    start: int
    end: int
    new: str


class _Tokens:
    """Scanner tokens of a text, found by the (line, column) the round-trip loader reports."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.tokens: list[Token] = list(YAML(typ="safe", pure=True).scan(text))
        self._at: dict[tuple[int, int], int] = {}
        for i, tok in enumerate(self.tokens):
            self._at.setdefault((tok.start_mark.line, tok.start_mark.column), i)

    def index_at(self, line: int, column: int) -> int:
        """Index of the first token starting at (line, column), both 0-based."""
        try:
            return self._at[(line, column)]
        except KeyError:
            raise YamlEditError(
                "internal error: no YAML token where the parser put a key or mapping",
                self.path,
                line + 1,
                "edit this file by hand and report the bug",
            ) from None

    def start(self, tok: Token) -> int:
        return int(tok.start_mark.index)

    def end(self, tok: Token) -> int:
        return int(tok.end_mark.index)


def set_values(
    text: str,
    path: str,
    section: str,
    values: dict[str, Scalar],
    *,
    add_missing: bool = True,
    holding: str | None = None,
) -> str:
    """Return ``text`` with ``section``'s keys set to ``values``, changing only those values.

    ``section`` may be dotted ("model.normalization"). Every document holding the section (and,
    if given, whose section holds the key ``holding``) is edited; the others are left alone. A
    key absent from the section is added when ``add_missing`` (block mapping: a new line after
    the section's last entry, indented like its siblings, ending like the line before it; flow
    mapping: ``, key: value`` after the last entry) and skipped otherwise. See the module
    docstring for quoting, comments and merges.

    Raises YamlEditError when no document holds the section, when the section or a key's
    current value is not what can be edited (a non-mapping section, a non-scalar value, an
    anchored/tagged/aliased/block scalar), and, as a safety net, when the edited text does
    not parse to exactly the intended data.
    """
    for key, value in values.items():
        if not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"{key}: expected bool, int, float or str, got {type(value).__name__}")
    start, end, lines = _narrow(text, path, section)
    part = text[start:end]
    new = _shifted(lines, lambda: _set_values(part, path, section, values, add_missing, holding))
    return text[:start] + new + text[end:]


def _set_values(
    text: str,
    path: str,
    section: str,
    values: dict[str, Scalar],
    add_missing: bool,
    holding: str | None,
) -> str:
    docs = load_all(text, path)
    found = _find_sections(docs, section, path, holding)
    tokens = _Tokens(text, path)
    edits: list[_Edit] = []
    overrides: dict[tuple[int, Any], Scalar] = {}  # (id(owner mapping), key) -> new value
    additions: dict[int, dict[str, Scalar]] = {}  # id(section mapping) -> added keys
    for sec in found:
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
            overrides[(id(owner), key)] = value
            edits.extend(_value_edits(tokens, owner, key, value, path))
        if missing:
            additions[id(sec)] = missing
            edits.extend(_insertions(tokens, sec, missing, path))
    if not edits:
        return text  # nothing differs: no churn, not even a re-parse
    new_text = _apply(text, edits, path)
    _verify(docs, new_text, path, overrides, additions)
    return new_text


def _find_sections(
    docs: list[Any], section: str, path: str, holding: str | None
) -> list[CommentedMap]:
    """The section mapping of every document that holds one (holding ``holding``, if given)."""
    found: list[CommentedMap] = []
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
        found.append(node)
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


# --------------------------------------------------------------------------- locating


def _value_edits(
    tokens: _Tokens, owner: CommentedMap, key: Any, value: Scalar, path: str
) -> list[_Edit]:
    """Edits that replace ``owner[key]``'s value text (and keep a following comment's column).

    Navigates from the key's token rather than the value's ``.lc`` position, which for an
    empty value (``key:``) points at the next key.
    """
    line = owner.lc.key(key)[0] + 1
    i = tokens.index_at(*owner.lc.key(key))
    # A first key shares its place with the mapping's start token and a KeyToken.
    while isinstance(tokens.tokens[i], (BlockMappingStartToken, FlowMappingStartToken, KeyToken)):
        i += 1
    key_tok, colon = tokens.tokens[i], tokens.tokens[i + 1]
    if not isinstance(key_tok, ScalarToken) or not isinstance(colon, ValueToken):
        raise YamlEditError(
            f"cannot find the value of '{key}'", path, line, "write it as 'key: value'"
        )
    tok = tokens.tokens[i + 2]
    if isinstance(tok, (AnchorToken, TagToken, AliasToken)):
        what = {AnchorToken: "an anchor", TagToken: "a tag", AliasToken: "an alias"}[type(tok)]
        raise YamlEditError(
            f"the value of '{key}' is {what}; editing it could change other places",
            path,
            line,
            "edit this value by hand",
        )
    _check_key_text(tokens, key_tok, key, path, line)
    flow = bool(owner.fa.flow_style())
    if not isinstance(tok, ScalarToken):
        # Empty value ("key:" or "key:  # comment"): insert after the colon.
        start = end = tokens.end(colon)
        new = " " + _render(value, None, flow)
    else:
        if tok.style in ("|", ">"):
            raise YamlEditError(
                f"the value of '{key}' is a block scalar", path, line, "edit this value by hand"
            )
        start, end = tokens.start(tok), tokens.end(tok)
        new = _render(value, tok.style, flow)
        if _has_break(tokens.text[start:end]):
            return [_Edit(start, end, new)]  # multi-line value: no column to keep
    edits = [_Edit(start, end, new)]
    gap = _comment_gap(tokens.text, end)
    if gap is not None:
        width = max(1, len(gap) + (end - start) - len(new))
        if width != len(gap):
            edits.append(_Edit(end, end + len(gap), " " * width))
    return edits


def _check_key_text(tokens: _Tokens, key_tok: ScalarToken, key: Any, path: str, line: int) -> None:
    """Safety net: a plain key's text must be where the offsets say, or edits would land wrong."""
    located = tokens.text[tokens.start(key_tok) : tokens.end(key_tok)]
    if key_tok.style is None and isinstance(key, str) and located != key:
        raise YamlEditError(
            f"internal error: cannot locate key '{key}' in the text",
            path,
            line,
            "edit this file by hand and report the bug",
        )


def _comment_gap(text: str, pos: int) -> str | None:
    """The blanks between ``pos`` and an inline ``#`` comment on the same line, if any."""
    match = re.compile(r"[ \t]+#").match(text, pos)
    return match.group(0)[:-1] if match else None


def _has_break(fragment: str) -> bool:
    return any(ch in fragment for ch in _BREAKS)


def _insertions(
    tokens: _Tokens, section: CommentedMap, items: dict[str, Scalar], path: str
) -> list[_Edit]:
    """Added keys keep a block section's alphabetical order when it has one; else they go last.

    A sorted section gets each new key as its own line just before the first key that sorts
    after it, so a file kept sorted by hand (or by a formatter) stays sorted.
    """
    keys = [k for k in section if isinstance(k, str)]
    block = section.fa.flow_style() is not True
    if not (block and len(keys) > 1 and keys == sorted(keys) and len(keys) == len(section)):
        return [_insertion(tokens, section, items, path)]
    indent = " " * section.lc.col
    before: dict[int, list[str]] = {}
    last: dict[str, Scalar] = {}
    for key, value in sorted(items.items()):
        successor = next((k for k in keys if k > key), None)
        if successor is None:
            last[key] = value
            continue
        # The successor's line starts where the scanner's column count does (offsets and lines
        # as ruamel counts them, which knows more line breaks than str.splitlines).
        mark = tokens.tokens[tokens.index_at(*section.lc.key(successor))].start_mark
        at = mark.index - mark.column
        eol = _ending_before(tokens.text, at)
        line = f"{indent}{_render(key, None, False)}: {_render(value, None, False)}{eol}"
        before.setdefault(at, []).append(line)
    edits = [_Edit(at, at, "".join(lines)) for at, lines in before.items()]
    if last:
        edits.append(_insertion(tokens, section, last, path))
    return edits


def _insertion(
    tokens: _Tokens, section: CommentedMap, items: dict[str, Scalar], path: str
) -> _Edit:
    """The edit that adds ``items`` to ``section`` in the section's own style."""
    i = tokens.index_at(section.lc.line, section.lc.col)
    while isinstance(tokens.tokens[i], (AnchorToken, TagToken)):  # "&anchor" before the mapping
        i += 1
    start_tok = tokens.tokens[i]
    j = _closing(tokens.tokens, i) - 1
    while isinstance(tokens.tokens[j], BlockEndToken):  # nested ends sit at the NEXT token
        j -= 1
    last = tokens.tokens[j]  # last token of the last entry
    if isinstance(start_tok, FlowMappingStartToken):
        pairs = ", ".join(
            f"{_render(k, None, True)}: {_render(v, None, True)}" for k, v in items.items()
        )
        if isinstance(last, FlowEntryToken):
            pairs = " " + pairs  # a trailing comma "{a: 1,}" already separates
        elif not isinstance(last, FlowMappingStartToken):  # "{}" needs no separator
            pairs = ", " + pairs
        return _Edit(tokens.end(last), tokens.end(last), pairs)
    if not isinstance(start_tok, BlockMappingStartToken):
        raise YamlEditError(
            "internal error: cannot locate the section's text",
            path,
            section.lc.line + 1,
            "edit this file by hand and report the bug",
        )
    indent = " " * start_tok.start_mark.column
    text = tokens.text
    pos = tokens.end(last)
    line_break = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
    eol_here = line_break.search(text, pos)
    if tokens.end(last) > 0 and last.end_mark.column == 0:
        at, eol = pos, _ending_before(text, pos)  # a block scalar already ate its line break
    elif eol_here is not None:
        at, eol = eol_here.end(), eol_here.group(0)
    else:
        at, eol = len(text), _dominant_eol(text)
    lines = [
        f"{indent}{_render(k, None, False)}: {_render(v, None, False)}" for k, v in items.items()
    ]
    if at == len(text) and not (text and text[-1] in _BREAKS):
        return _Edit(at, at, eol + eol.join(lines))  # keep "no final line break" as it was
    return _Edit(at, at, "".join(line + eol for line in lines))


def _closing(toks: list[Token], i: int) -> int:
    """Index of the token closing the block or flow collection opened at ``toks[i]``."""
    opening = (
        BlockMappingStartToken,
        BlockSequenceStartToken,
        FlowMappingStartToken,
        FlowSequenceStartToken,
    )
    closing = (BlockEndToken, FlowMappingEndToken, FlowSequenceEndToken)
    depth = 0
    for j in range(i, len(toks)):
        if isinstance(toks[j], opening):
            depth += 1
        elif isinstance(toks[j], closing):
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def _ending_before(text: str, at: int) -> str:
    """The line break ending just before ``at``: an inserted line ends like the line it follows."""
    if text.endswith("\r\n", 0, at):
        return "\r\n"
    if at and text[at - 1] in _BREAKS:
        return text[at - 1]
    return _dominant_eol(text)


def _dominant_eol(text: str) -> str:
    """The most common line ending in ``text``: CRLF, CR or LF (LF when it has none)."""
    counts = Counter(NEWLINE.findall(text))
    return counts.most_common(1)[0][0] if counts else "\n"


# --------------------------------------------------------------------------- rendering


def _render(value: Scalar, style: str | None, flow: bool) -> str:
    """YAML text for ``value``; strings keep ``style`` (None plain, "'" or '"') when they can."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if style == '"' or not value.isprintable():
        return _double_quoted(value)
    if style == "'" or not _plain_ok(value, flow):
        return "'" + value.replace("'", "''") + "'"
    return value


def _format_float(value: float) -> str:
    """Like a human writes it: 6.0, 2.0, 1e-06, 11.090354889 (repr, which always round-trips)."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(value)


def _double_quoted(value: str) -> str:
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = []
    for ch in value:
        if ch in escapes:
            out.append(escapes[ch])
        elif not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _plain_ok(value: str, flow: bool) -> bool:
    """Whether ``value`` written plain reads back as the same string in its context.

    Asking the parser is simpler and safer than re-implementing YAML's plain-scalar rules
    ("true", "1e3", "a: b", " x", "a #b", "[x" all need quotes). The probe runs under YAML 1.2
    and 1.1, so "yes"/"on" get quotes too: they are booleans in files marked ``%YAML 1.1``.
    """
    if not value or value != value.strip() or _has_break(value):
        return False
    probe = f"{{k: {value}}}\n" if flow else f"k: {value}\n"
    return all(_reads_as(value, header + probe) for header in ("", "%YAML 1.1\n---\n"))


def _reads_as(value: str, probe: str) -> bool:
    try:
        parsed = YAML(typ="safe", pure=True).load(probe)
    except YAMLError:
        return False
    return isinstance(parsed, dict) and type(parsed.get("k")) is str and parsed["k"] == value


# --------------------------------------------------------------------------- writing


def _apply(text: str, edits: Iterable[_Edit], path: str) -> str:
    """Apply non-overlapping edits, given as offsets into the original text."""
    out: list[str] = []
    pos = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        if edit.start < pos:
            raise YamlEditError(
                "internal error: overlapping YAML edits",
                path,
                _line_of_offset(text, edit.start),
                "edit this file by hand and report the bug",
            )
        out.append(text[pos : edit.start])
        out.append(edit.new)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)


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
