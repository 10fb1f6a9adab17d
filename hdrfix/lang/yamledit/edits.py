"""The text edits for one key: replacing a value (keeping an inline comment's column) and
inserting missing keys in the section's own style and order.
"""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.tokens import (
    AliasToken,
    AnchorToken,
    BlockEndToken,
    BlockMappingStartToken,
    FlowEntryToken,
    FlowMappingStartToken,
    KeyToken,
    ScalarToken,
    TagToken,
    ValueToken,
)

from hdrfix.lang.yamledit.breaks import _BREAKS, _dominant_eol, _ending_before, _has_break
from hdrfix.lang.yamledit.loading import YamlEditError
from hdrfix.lang.yamledit.render import _render
from hdrfix.lang.yamledit.tokens import _closing, _Edit, _Tokens
from hdrfix.lang.yamledit.values import Scalar


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
    # An alias (``key: *x``) is only read where it is written, which the caller has checked
    # is the section's alone: the literal replaces it, ``&x`` stays for its other readers.
    if isinstance(tok, (AnchorToken, TagToken)):
        what = {AnchorToken: "an anchor", TagToken: "a tag"}[type(tok)]
        raise YamlEditError(
            f"the value of '{key}' is {what}; editing it could change other places",
            path,
            line,
            "edit this value by hand",
        )
    _check_key_text(tokens, key_tok, key, path, line)
    flow = bool(owner.fa.flow_style())
    if isinstance(tok, AliasToken):
        start, end = tokens.start(tok), tokens.end(tok)
        new = _render(value, None, flow)
    elif not isinstance(tok, ScalarToken):
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


def _insertions(
    tokens: _Tokens, section: CommentedMap, items: dict[str, Scalar], path: str
) -> list[_Edit]:
    """Added keys keep a block section's alphabetical order when it has one; else they go last.

    A sorted section gets each new key as its own line just before the first key that sorts
    after it, so a file kept sorted by hand (or by a formatter) stays sorted.
    """
    # the keys written in the section: a merged one has no place in its text
    written = [k for k, _ in section.non_merged_items()]
    keys = [k for k in written if isinstance(k, str)]
    block = section.fa.flow_style() is not True
    if not (block and len(keys) > 1 and keys == sorted(keys) and len(keys) == len(written)):
        return [_insertion(tokens, section, items, path)]
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
        # indented like the key it goes before (an anchored section's own column is that of
        # its '&anchor', not of its keys)
        indent = " " * mark.column
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
