"""Tests for hdrfix.lang.yamledit: minimal-diff value edits on YAML text.

Every test pins the exact output text or the exact set of changed lines.
"""

from __future__ import annotations

import difflib
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hdrfix.lang import yamledit
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.yamledit import MISSING, YamlEditError, get, has_key, load, load_all, set_values

PHASE1 = {
    "log_delta_abs_max": 6.0,
    "log_delta_alpha": 1.0,
    "log_supervision_weight": 2.0,
    "log_supervision_type": "huber",
}


def diff(old: str, new: str) -> list[str]:
    """Only the changed lines, as '-old'/'+new' with their line endings."""
    lines = difflib.unified_diff(old.splitlines(True), new.splitlines(True), n=0)
    return [line for line in list(lines)[2:] if not line.startswith("@@")]


def edit(text: str, values: dict[str, Any], section: str = "normalization", **kw: Any) -> str:
    return set_values(text, "cfg.yaml", section, values, **kw)


# --------------------------------------------------------------------------- values and quoting


# (old text, new values, text expected): each case a way the value, or a comment after it, was
# written, which the edit keeps
@pytest.mark.parametrize(
    ("old", "values", "expected"),
    [
        pytest.param(
            "normalization:\n  type: log\n  log_delta_abs_max: 16.0\nseed: 1\n",
            {"log_delta_abs_max": 6.0},
            "normalization:\n  type: log\n  log_delta_abs_max: 6.0\nseed: 1\n",
            id="plain_value_is_replaced_and_nothing_else",
        ),
        pytest.param(
            "normalization:\n  log_supervision_type: 'l1'\n",
            {"log_supervision_type": "huber"},
            "normalization:\n  log_supervision_type: 'huber'\n",
            id="single_quoted_string_stays_single_quoted",
        ),
        pytest.param(
            'normalization:\n  log_supervision_type: "l1"\n',
            {"log_supervision_type": "huber"},
            'normalization:\n  log_supervision_type: "huber"\n',
            id="double_quoted_string_stays_double_quoted",
        ),
        pytest.param(
            "normalization:\n  a: 'x'\n  b: \"y\"\n",
            {"a": "it's", "b": 'say "hi"\n'},
            "normalization:\n  a: 'it''s'\n  b: \"say \\\"hi\\\"\\n\"\n",
            id="quotes_inside_new_strings_are_escaped_in_the_old_style",
        ),
        pytest.param(
            "normalization:\n  log_delta_abs_max: 16.0   # 最大残差\n  type: log  # 类型\n",
            {"log_delta_abs_max": 6.0},
            "normalization:\n  log_delta_abs_max: 6.0    # 最大残差\n  type: log  # 类型\n",
            id="chinese_comment_keeps_its_column_when_the_value_shrinks",
        ),
        pytest.param(
            "normalization:\n  t: l1 # 损失\n  w: 1  # weight\n",
            {"t": "charbonnier", "w": 2.0},
            "normalization:\n  t: charbonnier # 损失\n  w: 2.0 # weight\n",
            id="comment_keeps_at_least_one_space_when_the_value_grows",
        ),
    ],
)
def test_only_the_value_is_rewritten(old: str, values: dict, expected: str) -> None:
    assert edit(old, values) == expected


@pytest.mark.parametrize(
    ("new", "written"),
    [
        ("huber", "huber"),
        ("true", "'true'"),
        ("6.0", "'6.0'"),
        ("a: b", "'a: b'"),
        ("x #y", "'x #y'"),
        ("", "''"),
        ("中文", "中文"),
        ("yes", "'yes'"),
    ],
)
def test_plain_string_gets_single_quotes_only_when_needed(new: str, written: str) -> None:
    old = "normalization:\n  t: l1\n"
    assert edit(old, {"t": new}) == f"normalization:\n  t: {written}\n"


def test_numbers_and_booleans_drop_the_quotes_of_a_string_value() -> None:
    old = "normalization:\n  a: '16.0'\n  b: \"yes\"\n"
    assert edit(old, {"a": 6.0, "b": True}) == "normalization:\n  a: 6.0\n  b: true\n"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (6.0, "6.0"),
        (2.0, "2.0"),
        (11.090354889, "11.090354889"),
        (1e-06, "1e-06"),
        (6, "6"),
        (float("inf"), ".inf"),
        (-float("inf"), "-.inf"),
        (False, "false"),
    ],
)
def test_values_are_formatted_like_a_human_would(value: Any, written: str) -> None:
    old = "normalization:\n  v: 0.5\n"
    new = edit(old, {"v": value})
    assert new == f"normalization:\n  v: {written}\n"
    assert load(new, "x")["normalization"]["v"] == value


def test_nan_is_written_and_counts_as_unchanged_next_time() -> None:
    new = edit("normalization:\n  v: 1.0\n", {"v": math.nan})
    assert new == "normalization:\n  v: .nan\n"
    assert edit(new, {"v": math.nan}) == new


# --------------------------------------------------------------------------- no churn


@pytest.mark.parametrize(
    "text",
    [
        "normalization:\n  log_delta_abs_max: 6\n",
        "normalization:\n  log_delta_abs_max: 6.00\n",
        "normalization:\n  log_supervision_type: 'huber'\n",
        'normalization:\n  log_supervision_type: "huber"\n',
        "normalization:\n  log_supervision_type: huber\n",
        "normalization: {log_delta_abs_max: 6.0, log_supervision_type: huber}\n",
    ],
)
def test_equal_value_leaves_the_text_identical(text: str) -> None:
    values = {k: v for k, v in PHASE1.items() if k in text}
    assert edit(text, values) is text


def test_bool_and_number_are_not_equal() -> None:
    old = "normalization:\n  a: 1\n  b: true\n"
    assert edit(old, {"a": True, "b": 1}) == "normalization:\n  a: true\n  b: 1\n"


def test_numeric_string_and_number_are_not_equal() -> None:
    assert edit("normalization:\n  a: '6'\n", {"a": 6}) == "normalization:\n  a: 6\n"


# --------------------------------------------------------------------------- bytes kept elsewhere


def test_unicode_escapes_null_and_tilde_elsewhere_are_kept() -> None:
    old = (
        'name: "hdr \\u2192 ldr"\n'
        "resume: null\n"
        "normalization:\n"
        "  log_delta_abs_max: 16.0\n"
        "  log_epsilon: ~\n"
        "  note: null\n"
        'tag: "\\u00e9"\n'
    )
    new = edit(old, {"log_delta_abs_max": 6.0})
    assert diff(old, new) == ["-  log_delta_abs_max: 16.0\n", "+  log_delta_abs_max: 6.0\n"]


def test_whitespace_only_lines_and_trailing_spaces_are_kept() -> None:
    old = "normalization:   \n  type: log  \n    \n  log_delta_alpha: 1.2   \n \nseed: 3 \n"
    new = edit(old, {"log_delta_alpha": 1.0})
    assert new == "normalization:   \n  type: log  \n    \n  log_delta_alpha: 1.0   \n \nseed: 3 \n"


# a comment's column as the value shrinks or grows: cases of test_only_the_value_is_rewritten


@pytest.mark.parametrize("indent", [2, 4])
def test_indentation_is_kept(indent: int) -> None:
    pad = " " * indent
    old = f"model:\n{pad}normalization:\n{pad * 2}type: log\n{pad * 2}log_delta_alpha: 1.2\n"
    new = edit(old, {"log_delta_alpha": 1.0, "log_epsilon": 1e-06}, "model.normalization")
    assert new == (
        f"model:\n{pad}normalization:\n{pad * 2}type: log\n{pad * 2}log_delta_alpha: 1.0\n"
        f"{pad * 2}log_epsilon: 1e-06\n"
    )


@pytest.mark.parametrize(
    "keys",
    [
        ["log_delta_abs_max", "log_delta_alpha", "log_supervision_type", "log_supervision_weight"],
        ["log_supervision_weight", "log_delta_abs_max", "log_supervision_type", "log_delta_alpha"],
    ],
    ids=["sorted", "hand-ordered"],
)
def test_key_order_is_kept(keys: list[str]) -> None:
    old_values = {
        "log_delta_abs_max": "16.0",
        "log_delta_alpha": "1.2",
        "log_supervision_type": "l1",
        "log_supervision_weight": "1.0",
    }
    old = "normalization:\n" + "".join(f"  {k}: {old_values[k]}\n" for k in keys)
    new = edit(old, PHASE1)
    written = {
        "log_delta_abs_max": "6.0",
        "log_delta_alpha": "1.0",
        "log_supervision_type": "huber",
        "log_supervision_weight": "2.0",
    }
    assert new == "normalization:\n" + "".join(f"  {k}: {written[k]}\n" for k in keys)


def test_crlf_line_endings_are_kept_and_used_for_added_keys() -> None:
    old = "seed: 1\r\nnormalization:\r\n  log_delta_abs_max: 16.0  # cap\r\n\r\nother: 2\r\n"
    new = edit(old, {"log_delta_abs_max": 6.0, "log_delta_alpha": 1.0})
    assert new == (
        "seed: 1\r\nnormalization:\r\n  log_delta_abs_max: 6.0   # cap\r\n"
        "  log_delta_alpha: 1.0\r\n\r\nother: 2\r\n"
    )


def test_byte_order_mark_is_kept() -> None:
    old = "\ufeffnormalization:\n  a: 1\n"
    assert edit(old, {"a": 2}) == "\ufeffnormalization:\n  a: 2\n"


def test_an_added_line_ends_like_the_line_before_it() -> None:
    # a CRLF section in a mostly-LF file, then a file of old-Mac CRs
    mixed = "a: 1\nb: 2\nc: 3\ne: 4\nnormalization:\r\n  b: 1\r\n  d: 2\r\nz: 3\n"
    assert edit(mixed, {"c": 3}) == mixed.replace("  d: 2", "  c: 3\r\n  d: 2")
    cr_only = "normalization:\r  a: 1\r  c: 2\rother: 3\r"
    assert edit(cr_only, {"b": 3, "d": 4}) == (
        "normalization:\r  a: 1\r  b: 3\r  c: 2\r  d: 4\rother: 3\r"
    )


# --------------------------------------------------------------------------- flow mappings


def test_flow_mapping_changes_one_line() -> None:
    old = "# cfg\nnormalization: {type: log, log_delta_abs_max: 16.0}\nseed: 1\n"
    new = edit(old, PHASE1)
    assert diff(old, new) == [
        "-normalization: {type: log, log_delta_abs_max: 16.0}\n",
        (
            "+normalization: {type: log, log_delta_abs_max: 6.0, log_delta_alpha: 1.0, "
            "log_supervision_weight: 2.0, log_supervision_type: huber}\n"
        ),
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("n: {}\n", "n: {a: x}\n"),
        ("n: {b: 1,}\n", "n: {b: 1, a: x}\n"),
        ("n: { b: 1 }\n", "n: { b: 1, a: x }\n"),
        ("n: {b: 'q'}\n", "n: {b: 'q', a: x}\n"),
    ],
)
def test_flow_mapping_gets_missing_keys_before_the_closing_brace(old: str, new: str) -> None:
    assert edit(old, {"a": "x"}, "n") == new


def test_flow_mapping_string_needing_quotes_in_flow_context() -> None:
    assert edit("n: {t: l1}\n", {"t": "a, b"}, "n") == "n: {t: 'a, b'}\n"


def test_multi_line_flow_mapping_with_comment() -> None:
    old = "n: {\n  a: 1,  # first\n  b: 2  # last\n}\n"
    assert edit(old, {"b": 3, "c": 4}, "n") == "n: {\n  a: 1,  # first\n  b: 3, c: 4  # last\n}\n"


# --------------------------------------------------------------------------- missing keys


def test_missing_key_is_added_after_the_last_entry_with_sibling_indentation() -> None:
    old = "normalization:\n    type: log\n    sub:\n        x: 1\n    # end\n\nseed: 1\n"
    new = edit(old, {"log_delta_abs_max": 6.0, "log_supervision_type": "huber"})
    assert new == (
        "normalization:\n    type: log\n    sub:\n        x: 1\n"
        "    log_delta_abs_max: 6.0\n    log_supervision_type: huber\n    # end\n\nseed: 1\n"
    )


def test_missing_key_at_end_of_file_without_final_line_break() -> None:
    assert edit("normalization:\n  a: 1", {"b": 2}) == "normalization:\n  a: 1\n  b: 2"


def test_missing_key_after_an_indentless_sequence() -> None:
    old = "normalization:\n  l:\n  - 1\n  - 2\nseed: 1\n"
    assert edit(old, {"b": 2}) == "normalization:\n  l:\n  - 1\n  - 2\n  b: 2\nseed: 1\n"


def test_missing_key_filling_an_empty_value() -> None:
    old = "normalization:\n  a:\n  b:   # later\n"
    assert edit(old, {"a": 1, "b": "x"}) == "normalization:\n  a: 1\n  b: x # later\n"


def test_add_missing_false_skips_absent_keys() -> None:
    old = "normalization:\n  a: 1\n"
    assert edit(old, {"a": 2, "b": 3}, add_missing=False) == "normalization:\n  a: 2\n"
    assert edit(old, {"b": 3}, add_missing=False) is old


def test_added_key_that_needs_quotes() -> None:
    assert edit("n:\n  a: 1\n", {"true": "yes: no"}, "n") == "n:\n  a: 1\n  'true': 'yes: no'\n"


# --------------------------------------------------------------------------- anchors and merges


def test_merged_key_is_edited_where_it_is_defined() -> None:
    old = (
        "base: &base\n"
        "  log_delta_abs_max: 16.0\n"
        "  log_delta_alpha: 1.2\n"
        "normalization:\n"
        "  <<: *base\n"
        "  log_delta_alpha: 1.5\n"
    )
    new = edit(old, {"log_delta_abs_max": 6.0, "log_delta_alpha": 1.0})
    assert diff(old, new) == [
        "-  log_delta_abs_max: 16.0\n",
        "+  log_delta_abs_max: 6.0\n",
        "-  log_delta_alpha: 1.5\n",  # the section's own key overrides the merge: edited there
        "+  log_delta_alpha: 1.0\n",
    ]
    data = load(new, "x")
    assert data["base"]["log_delta_alpha"] == 1.2
    assert dict(data["normalization"]) == {"log_delta_abs_max": 6.0, "log_delta_alpha": 1.0}


def test_first_merge_wins_and_is_the_one_edited() -> None:
    old = "a: &a {x: 1}\nb: &b {x: 2, y: 3}\nn:\n  <<: [*a, *b]\n"
    new = edit(old, {"x": 5, "y": 6}, "n")
    assert new == "a: &a {x: 5}\nb: &b {x: 2, y: 6}\nn:\n  <<: [*a, *b]\n"


def test_section_that_is_an_alias_is_edited_at_its_anchor() -> None:
    old = "defaults: &n {a: 1}\nnormalization: *n\n"  # nothing else reads &n
    new = edit(old, {"a": 2, "b": "z"})
    assert new == "defaults: &n {a: 2, b: z}\nnormalization: *n\n"


def test_anchored_section_gets_keys_on_its_own_lines() -> None:
    old = "normalization: &n\n  a: 1\n"  # aliased elsewhere, it would be refused (test_yaml_merge)
    assert edit(old, {"b": 2}) == "normalization: &n\n  a: 1\n  b: 2\n"


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("normalization:\n  a: &x 1\nb: *x\n", "an anchor"),
        ("normalization:\n  a: !!float 1\n", "a tag"),
        ("normalization:\n  a: |\n    text\n", "a block scalar"),
    ],
)
def test_values_that_a_human_must_edit_are_refused(text: str, what: str) -> None:
    with pytest.raises(YamlEditError, match=f"the value of 'a' is {what}"):
        edit(text, {"a": 2})


# --------------------------------------------------------------------------- errors


def test_alias_bomb_is_refused_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = "\n".join(lines) + "\nnormalization: {x: 1}\n"
    start = time.perf_counter()
    with pytest.raises(YamlEditError) as info:
        edit(bomb, {"x": 2})
    assert time.perf_counter() - start < 1.0
    assert str(info.value) == (
        "cfg.yaml:9: aliases expand the 104 nodes as written more than 100-fold (alias bomb?); "
        "expand the aliases by hand or drop them"
    )


def test_moderate_alias_use_is_fine() -> None:
    text = "a: &a {x: 1, y: 2}\nb: [*a, *a, *a]\nnormalization:\n  <<: *a\n"
    assert load(text, "x")["b"][2]["y"] == 2


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(YamlEditError, match=r"cfg.yaml:1: alias \*r refers to"):
        load("a: &r [1, *r]\n", "cfg.yaml")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3, "malformed YAML: expected ',' or ']', but got ':'"),
        ("a:\n  b: 1\n c: 2\n", 3, "malformed YAML: expected <block end>"),
        ("normalization:\n  a: 1\n  a: 2\n", 3, "malformed YAML: found duplicate key"),
        ("a: 1\nb: \x07\n", 2, "unacceptable character #x0007"),
    ],
)
def test_malformed_yaml_names_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(YamlEditError) as info:
        edit(text, {"a": 1})
    assert info.value.line == line
    assert str(info.value).startswith(f"cfg.yaml:{line}: {message}")
    assert "\n" not in str(info.value)
    assert isinstance(info.value, HdrfixError)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("normalization:\n  x: 1\n  a:\n    b: 1\n", "a mapping"),
        ("normalization:\n  x: 1\n  a: [1, 2]\n", "a sequence"),
    ],
)
def test_non_scalar_value_names_its_line(text: str, kind: str) -> None:
    with pytest.raises(YamlEditError) as info:
        edit(text, {"a": 1})
    assert str(info.value) == (
        f"cfg.yaml:3: normalization.a is {kind}, expected a scalar; "
        "make it a single value or edit it by hand"
    )


def test_missing_section_is_an_error() -> None:
    with pytest.raises(YamlEditError) as info:
        edit("model:\n  depth: 5\n", {"a": 1}, "model.normalization")
    assert str(info.value) == (
        "cfg.yaml:2: no 'model.normalization' mapping in any YAML document; "
        "add a 'model.normalization:' section or choose another file"
    )


def test_section_that_is_not_a_mapping_is_an_error() -> None:
    with pytest.raises(YamlEditError, match=r"cfg.yaml:2: 'normalization' is null, expected"):
        edit("seed: 1\nnormalization:\n", {"a": 1})


def test_safety_net_catches_a_wrong_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    # A string, not a float; patched where _render reads it.
    monkeypatch.setattr(yamledit.render, "_format_float", lambda value: "'6.0'")
    with pytest.raises(YamlEditError, match="internal error: the edited YAML does not hold"):
        edit("normalization:\n  a: 16.0\n", {"a": 6.0})


def test_non_scalar_intended_value_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        edit("normalization:\n  a: 1\n", {"a": [1]})  # type: ignore[dict-item]


# --------------------------------------------------------------------------- documents and queries


def test_multi_document_stream_edits_only_documents_holding_the_section() -> None:
    old = "---\nnormalization:\n  a: 1\n---\nother: 'x'\n...\n---\nnormalization: {a: 1}\n"
    new = edit(old, {"a": 2, "b": 3})
    assert diff(old, new) == [
        "-  a: 1\n",
        "+  a: 2\n",
        "+  b: 3\n",
        "-normalization: {a: 1}\n",
        "+normalization: {a: 2, b: 3}\n",
    ]
    with pytest.raises(YamlEditError, match="holds 3 YAML documents"):
        load(old, "cfg.yaml")
    assert len(load_all(old, "cfg.yaml")) == 3


def test_get_and_has_key() -> None:
    text = "base: &b {x: 1}\nmodel:\n  normalization:\n    <<: *b\n    y: null\n"
    data = load(text, "cfg.yaml")
    assert get(data, "model.normalization.x") == 1
    assert get(data, "model.normalization.y") is None
    assert get(data, "model.normalization.z") is MISSING
    assert get(data, "model.normalization.y.deeper") is MISSING
    assert has_key(text, "cfg.yaml", "model.normalization.x")
    assert not has_key(text, "cfg.yaml", "normalization.x")
    assert has_key("---\na: 1\n---\nb: {c: 2}\n", "cfg.yaml", "b.c")
    assert load("", "cfg.yaml") is None


def test_large_file_holding_only_the_section_is_parsed_whole() -> None:
    # nothing to narrow to: this once recursed until RecursionError
    filler = "".join(f"  k{i}: {'x' * 200}\n" for i in range(1400))
    old = "normalization:\n" + filler + "  a: 1\n"
    assert len(old) > yamledit.LARGE
    assert edit(old, {"a": 2}) == old.replace("  a: 1\n", "  a: 2\n")


# --------------------------------------------------------------------------- properties

KNOWN = [
    "log_delta_abs_max",
    "log_delta_alpha",
    "log_delta_scale",
    "log_epsilon",
    "log_supervision_enable",
    "log_supervision_weight",
    "log_supervision_type",
    "log_supervision_huber_delta",
]
EXTRA = ["type", "mode", "clip", "eps_floor", "note", "ring", "mask_weight", "scale"]
PLAIN_STRINGS = ["l1", "huber", "charbonnier", "log", "a b", "中文", "a→b"]
OTHER_STRINGS = ["it's", "true", "x: y", "6.0", "a #b", ""]
SCALARS = st.one_of(
    st.sampled_from([0.0, 1.0, 1.2, 2.0, 6.0, 16.0, 1e-06, 11.090354889, 0.5, -3.25]),
    st.integers(-5, 20),
    st.booleans(),
    st.sampled_from(PLAIN_STRINGS + OTHER_STRINGS),
)
COMMENTS = ["# 最大值", "# cap", "#x"]


def render_value(value: Any, style: str, ascii_escapes: bool) -> str:
    """How a human might have written ``value`` (the generator's side, independent of yamledit)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if style == "double":
        return json.dumps(value, ensure_ascii=ascii_escapes)  # '\u2192' escapes when ascii
    if style == "single" or value not in PLAIN_STRINGS:
        return "'" + value.replace("'", "''") + "'"
    return value


def same(old: Any, new: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool) and old == new
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return float(old) == float(new)
    return isinstance(old, str) and isinstance(new, str) and old == new


@dataclass
class Config:
    text: str
    eol: str
    indent: str
    flow: bool
    entries: dict[str, tuple[Any, int]]  # key -> (value, line index)
    comments: dict[int, str]  # line index -> inline comment on it
    last_line: int  # line index of the section's last entry
    values: dict[str, Any]


@st.composite
def configs(draw: st.DrawFn) -> Config:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    indent = " " * draw(st.sampled_from([2, 4]))
    flow = draw(st.booleans())
    ascii_escapes = draw(st.booleans())
    keys = draw(st.lists(st.sampled_from(KNOWN + EXTRA), min_size=1, max_size=9, unique=True))
    if draw(st.booleans()):
        keys.sort()
    current = {k: draw(SCALARS) for k in keys}
    lines = [
        "# training config",
        'name: "run \\u2192 hdr"',
        "resume: null",
        "empty: ~",
        draw(st.sampled_from(["", "   ", "seed: 3  "])),
    ]
    styles = {k: draw(st.sampled_from(["plain", "single", "double"])) for k in keys}
    entries: dict[str, tuple[Any, int]] = {}
    comments: dict[int, str] = {}
    if flow:
        pairs = [f"{k}: {render_value(current[k], styles[k], ascii_escapes)}" for k in keys]
        lines.append("normalization: {" + ", ".join(pairs) + "}")
        entries = {k: (current[k], len(lines) - 1) for k in keys}
    else:
        lines.append("normalization:")
        for k in keys:
            line = f"{indent}{k}: {render_value(current[k], styles[k], ascii_escapes)}"
            comment = draw(st.sampled_from([None, *COMMENTS]))
            if comment is not None:
                comments[len(lines)] = comment
                line += " " * draw(st.integers(1, 4)) + comment
            else:
                line += draw(st.sampled_from(["", "  "]))  # trailing spaces
            lines.append(line)
            entries[k] = (current[k], len(lines) - 1)
            lines.extend(draw(st.lists(st.sampled_from(["", "  ", f"{indent}# 注释"]), max_size=2)))
    last_line = max(index for _, index in entries.values())
    lines += ["model:", f"{indent}depth: 5", f"{indent}act: ~", "tail: 'x'"]
    targets = draw(st.lists(st.sampled_from(KNOWN + EXTRA), min_size=1, max_size=6, unique=True))
    values = {k: draw(SCALARS) for k in targets}
    return Config(eol.join(lines) + eol, eol, indent, flow, entries, comments, last_line, values)


@settings(max_examples=100, deadline=None)
@given(configs())
def test_property_only_changed_values_change(cfg: Config) -> None:
    new = set_values(cfg.text, "cfg.yaml", "normalization", cfg.values)
    old_data, new_data = load(cfg.text, "cfg.yaml"), load(new, "cfg.yaml")

    # The data: the section holds the intended values, everything else is as it was.
    section = new_data["normalization"]
    for key, value in cfg.values.items():
        assert same(section[key], value)
    for key in old_data["normalization"]:
        if key not in cfg.values:
            assert section[key] == old_data["normalization"][key]
    assert {k: v for k, v in new_data.items() if k != "normalization"} == {
        k: v for k, v in old_data.items() if k != "normalization"
    }

    # The text: exactly the lines of changed values change; added keys add one line each.
    changed = {
        cfg.entries[k][1]
        for k, v in cfg.values.items()
        if k in cfg.entries and not same(cfg.entries[k][0], v)
    }
    added = [k for k in cfg.values if k not in cfg.entries]
    old_lines, new_lines = cfg.text.splitlines(True), new.splitlines(True)
    if cfg.flow:
        if added:
            changed.add(cfg.last_line)
        assert len(new_lines) == len(old_lines)
        assert {i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b} == changed
    else:
        # Added keys go last, or just before their successor when the section is sorted.
        ordered = list(cfg.entries)
        is_sorted = len(ordered) > 1 and ordered == sorted(ordered)
        expected = sorted(added) if is_sorted else added
        bases = []
        for k in expected:
            successor = next((e for e in ordered if e > k), None) if is_sorted else None
            bases.append(cfg.entries[successor][1] if successor else cfg.last_line + 1)
        positions = [base + i for i, base in enumerate(bases)]
        inserted = [new_lines[p] for p in positions]
        assert [line.split(":")[0] for line in inserted] == [cfg.indent + k for k in expected]
        assert all(line.endswith(cfg.eol) and not line.endswith(" " + cfg.eol) for line in inserted)
        kept = [line for i, line in enumerate(new_lines) if i not in set(positions)]
        assert len(kept) == len(old_lines)
        assert {i for i, (a, b) in enumerate(zip(old_lines, kept)) if a != b} == changed
        for i in changed:  # the key and an inline comment stay on a changed line
            key_part = old_lines[i].split(":")[0] + ":"
            assert kept[i].startswith(key_part)
            if i in cfg.comments:
                assert kept[i].endswith(" " + cfg.comments[i] + cfg.eol)

    # And a second run changes nothing.
    assert set_values(new, "cfg.yaml", "normalization", cfg.values) == new


@pytest.mark.parametrize("first", [1, 1.0, True, -0.0])
def test_values_equal_in_python_are_written_as_themselves_in_one_process(first):
    """Edits are shared across a process by their input; 1, 1.0 and True are equal keys in
    Python, and 0.0 equals -0.0: each is still written as itself, whichever came first."""
    text = "normalization:\n  a: 5\n"
    yamledit.set_values(text, "c.yaml", "normalization", {"a": first})
    for value, written in (
        (1, "a: 1\n"),
        (1.0, "a: 1.0\n"),
        (True, "a: true\n"),
        (0.0, "a: 0.0\n"),
    ):
        new = yamledit.set_values(text, "c.yaml", "normalization", {"a": value}, along=[])
        assert new == "normalization:\n  " + written, (first, value, new)
