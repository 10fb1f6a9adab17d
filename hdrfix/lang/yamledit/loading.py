"""Parsing YAML text into round-trip documents, refusing alias bombs, recursive aliases and
nesting too deep to parse, and turning ruamel's errors into one-line errors at their line.
"""

from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)
from ruamel.yaml.reader import ReaderError

from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.yamledit.breaks import _line_of_offset

#: How many times over aliases may multiply a stream's nodes before it counts as an alias bomb.
ALIAS_RATIO_LIMIT: Final = 100
#: Where walking parser events stops: ruamel's composer gives up below 300 levels anyway, and
#: its scanner checks every open flow level at each token, so a walk of 50,000 nested ``[`` took
#: minutes (a hang, for a config that arrives in a pull request).
DEPTH_LIMIT: Final = 500


class YamlEditError(HdrfixError):
    """Bad YAML input or an edit that cannot be made safely.

    ``str()`` is one line: ``<path>:<line>: <what is wrong>; <what to do>`` (line is 1-based).
    """


def load_all(text: str, path: str) -> list[Any]:
    """Round-trip parse every document of ``text``.

    Raises YamlEditError for malformed YAML (with the line of ruamel's problem mark),
    duplicate keys, recursive aliases, alias bombs and nesting too deep to parse. The alias
    check streams parser events and never expands anything, so a billion-laughs document fails
    fast in bounded memory.
    Callers must not mutate the result: one run asks about the same text several times
    (is it a target? which values? edit it) and the parse is shared.
    """
    return list(_SHARED.get(text, path))


class _Parses:
    """Parses shared across one run, bounded by the text they hold rather than by a count: a
    run walks every config once per phase, and 800 sweep configs in a 32-entry cache were
    parsed again for each phase (``status`` took 55 s). Parsed YAML takes some 60 bytes of
    memory per character of text."""

    def __init__(self, chars: int) -> None:
        self.chars = chars
        self.held = 0
        self.docs: OrderedDict[tuple[str, str], tuple[Any, ...]] = OrderedDict()

    def get(self, text: str, path: str) -> tuple[Any, ...]:
        key = (text, path)
        if key in self.docs:
            self.docs.move_to_end(key)
            return self.docs[key]
        docs = self.docs[key] = _parsed(text, path)
        self.held += len(text)
        while self.held > self.chars and len(self.docs) > 1:
            (old, _), _ = self.docs.popitem(last=False)
            self.held -= len(old)
        return docs


_SHARED = _Parses(chars=8 * 1024 * 1024)


def _parsed(text: str, path: str) -> tuple[Any, ...]:
    _refuse_deep_flow(text, path)
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
                if len(stack) > DEPTH_LIMIT:
                    raise _too_deep(text, path)
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


def _refuse_deep_flow(text: str, path: str) -> None:
    """Refuse flow collections nested past DEPTH_LIMIT before anything scans the whole text.

    ruamel's scanner looks ahead up to 1,024 characters for a simple key in flow context and,
    at each token, checks every open flow level: a line of 20,000 ``[`` costs it seconds
    (quadratic), and every parse of the text paid that before the depth was noticed. The
    parser reads left to right, so its events for a prefix are those of the whole text up to
    there: the prefix that a count of brackets says is too deep is parsed alone, and the
    refusal only stands where the parser confirms it (brackets in strings and comments are
    counted too, so the count alone proves nothing)."""
    cut = _bracket_cut(text)
    if cut is not None:
        deepest, line = _deepest(text[:cut])
        if deepest > DEPTH_LIMIT:
            raise _deep_error(deepest, line, path)


def _bracket_cut(text: str) -> int | None:
    """The offset just past the first flow opener that a count of brackets alone puts more
    than DEPTH_LIMIT levels deep, or None."""
    if text.count("[") + text.count("{") <= DEPTH_LIMIT:
        return None
    depth = 0
    for match in _BRACKET.finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > DEPTH_LIMIT:
                return match.end()
        elif depth:
            depth -= 1
    return None


_BRACKET: Final = re.compile(r"[\[\]{}]")


def _deepest(text: str) -> tuple[int, int]:
    """How deep the parser's events nest (DEPTH_LIMIT + 1 at most: deeper is no more refused,
    only slower to find), and the line where they first nest that deep."""
    depth = deepest = 0
    line = 1
    with contextlib.suppress(YAMLError):  # a syntax error further on can wait for its turn
        for event in YAML(typ="safe", pure=True).parse(text):  # the parser does not recurse
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > deepest:
                    deepest, line = depth, event.start_mark.line + 1
                if depth > DEPTH_LIMIT:
                    break
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    return deepest, line


def _too_deep(text: str, path: str) -> YamlEditError:
    """The error for a stream nested too deeply for ruamel, at the line where it is deepest."""
    cut = _bracket_cut(text)
    deepest, line = _deepest(text[:cut]) if cut is not None else (0, 1)
    if deepest <= DEPTH_LIMIT:  # the brackets misled: the whole stream, then
        deepest, line = _deepest(text)
    return _deep_error(deepest, line, path)


def _deep_error(deepest: int, line: int, path: str) -> YamlEditError:
    more = "more than " if deepest > DEPTH_LIMIT else ""
    return YamlEditError(
        f"mappings and sequences nest {more}{min(deepest, DEPTH_LIMIT)} levels deep, too deep "
        "to parse",
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
