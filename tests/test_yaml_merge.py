"""Anchors, aliases and ``<<`` merges: hdrfix changes the section it targets and nothing else
(issue 19.10: a merge base shared by ``normalization`` and ``fast`` was edited in place, so
``fast`` changed too). A base shared with another section is split (the section gets the key
as its own); a base only the section reads is edited where it is defined; a section that is
itself read elsewhere is refused in one line, nothing written."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from conftest import hdrfix, refusal
from fielddata import CONFIG
from ruamel.yaml import YAML

from hdrfix.lang import yamledit

OLD = {"log_delta_abs_max": 16.0, "log_delta_alpha": 1.2, "log_supervision_weight": 1.0}
NEW = {"log_delta_abs_max": 6.0, "log_delta_alpha": 1.0, "log_supervision_weight": 2.0}


def data(text: str) -> dict:
    return YAML(typ="safe", pure=True).load(text)


def write(framework: Path, text: str) -> Path:
    (framework / "configs/presets/fast_test.yaml").unlink()  # one config: the one under test
    (framework / CONFIG).write_text(text, encoding="utf-8")
    return framework / CONFIG


# Two anchors: &own is merged by normalization alone, &shared by normalization and fast.
TWO_ANCHORS = """\
own: &own
  log_delta_abs_max: 16.0
  log_supervision_weight: 1.0
shared: &shared
  log_delta_alpha: 1.2
  log_supervision_type: l1
normalization:
  <<: [*own, *shared]
  type: log
fast:
  <<: *shared
  type: global
"""


def test_a_shared_base_is_split_and_a_private_one_edited_where_defined(framework):
    config = write(framework, TWO_ANCHORS)
    dry = hdrfix("apply", "phase1", "--repo", framework, "--dry-run")
    assert dry.code == 0, dry.err
    assert "+  log_delta_alpha: 1.0\n" in dry.out and config.read_text() == TWO_ANCHORS
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    after = config.read_text()
    changed = [
        line
        for line in difflib.unified_diff(TWO_ANCHORS.splitlines(), after.splitlines(), lineterm="")
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [
        # &own: nothing but normalization reads it, so its definition is the one source
        "-  log_delta_abs_max: 16.0",
        "-  log_supervision_weight: 1.0",
        "+  log_delta_abs_max: 6.0",
        "+  log_supervision_weight: 2.0",
        # &shared: fast reads it too, so normalization gets keys of its own
        "+  log_delta_alpha: 1.0",
        "+  log_supervision_type: huber",
    ]
    # under normalization, not under fast
    assert (
        after.index("  type: log\n") < after.index("  log_delta_alpha: 1.0") < after.index("fast:")
    )
    old, new = data(TWO_ANCHORS), data(after)
    assert new["fast"] == old["fast"] and new["shared"] == old["shared"]
    assert {k: new["normalization"][k] for k in NEW} == NEW
    assert new["normalization"]["log_supervision_type"] == "huber"
    assert hdrfix("apply", "phase1", "--repo", framework, "--check").code == 0  # applied
    assert hdrfix("revert", "phase1", "--repo", framework).code == 0
    assert config.read_text() == TWO_ANCHORS


SECTION_IS_AN_ALIAS = """\
defaults: &norm
  log_delta_abs_max: 16.0
  log_delta_alpha: 1.2
normalization: *norm
fast:
  <<: *norm
  type: global
"""

SECTION_IS_ALIASED = """\
normalization: &norm
  log_delta_abs_max: 16.0
  log_delta_alpha: 1.2
eval:
  normalization: *norm
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            SECTION_IS_AN_ALIAS,
            f"{CONFIG}:5: normalization is shared with fast through &norm: setting "
            "normalization.log_delta_abs_max would change fast too; write normalization as a "
            "mapping of its own ('<<: *norm' and its own keys), then rerun",
        ),
        (
            SECTION_IS_ALIASED,
            f"{CONFIG}:5: normalization is shared with eval.normalization through &norm: "
            "setting normalization.log_delta_abs_max would change eval.normalization too; "
            "move its keys to a top-level mapping '&norm' that normalization and "
            "eval.normalization both merge ('<<: *norm'), then rerun",
        ),
    ],
)
def test_a_section_read_elsewhere_is_refused_naming_the_other_place(framework, text, message):
    write(framework, text)
    for args in (("apply", "phase1"), ("apply", "phase1", "--dry-run")):
        assert refusal(framework, *args) == f"hdrfix: error: {message}\n"


def test_a_key_added_to_a_shared_section_is_refusal(framework):
    """bound adds log_output_max: ``fast`` merges the section, so it would gain it too."""
    after_phase1 = SECTION_IS_AN_ALIAS.replace("16.0", "6.0").replace("1.2", "1.0")
    write(framework, after_phase1)
    err = refusal(framework, "apply", "bound")
    assert err.startswith(
        f"hdrfix: error: {CONFIG}:5: normalization is shared with fast through &norm: "
        "setting normalization.log_output_max would change fast too"
    )


def test_a_scalar_alias_in_the_section_is_replaced_and_its_anchor_kept(framework):
    text = (
        "limits:\n  cap: &cap 16.0\n  other_cap: *cap\n"
        "normalization:\n  type: log\n  log_delta_abs_max: *cap   # the shared cap\n"
        "  log_delta_alpha: 1.2\n"
    )
    config = write(framework, text)
    result = hdrfix("apply", "phase1", "--repo", framework)
    assert result.code == 0, result.err
    after = config.read_text()
    assert "  log_delta_abs_max: 6.0    # the shared cap\n" in after  # the comment keeps its column
    assert data(after)["limits"] == {"cap": 16.0, "other_cap": 16.0}


@pytest.mark.parametrize(
    ("text", "expected", "unchanged"),
    [
        # the base reaches normalization through &mid, which only normalization merges (its
        # p is edited where defined); other merges the base itself (q is split)
        (
            "base: &base\n  q: 1\nmid: &mid\n  <<: *base\n  p: 2\n"
            "normalization:\n  <<: *mid\nother:\n  <<: *base\n",
            "base: &base\n  q: 1\nmid: &mid\n  <<: *base\n  p: 5\n"
            "normalization:\n  <<: *mid\n  q: 4\nother:\n  <<: *base\n",
            ("base", "other"),
        ),
        # flow style: the new keys join the section's own braces
        (
            "base: &b {q: 1, p: 2}\nnormalization: {<<: *b, z: 0}\nfast: {<<: *b}\n",
            "base: &b {q: 1, p: 2}\nnormalization: {<<: *b, z: 0, q: 4, p: 5}\nfast: {<<: *b}\n",
            ("base", "fast"),
        ),
        # a sorted section stays sorted; the merged keys have no place in its text
        (
            "base: &b\n  p: 1\n  q: 2\nnormalization:\n  <<: *b\n  a: 0\n  z: 0\nfast: *b\n",
            "base: &b\n  p: 1\n  q: 2\nnormalization:\n  <<: *b\n  a: 0\n  p: 5\n  q: 4\n"
            "  z: 0\nfast: *b\n",
            ("base", "fast"),
        ),
    ],
)
def test_split_merges_change_only_the_section(text, expected, unchanged):
    new = yamledit.set_values(text, "cfg.yaml", "normalization", {"q": 4, "p": 5})
    assert new == expected
    old_data, new_data = data(text), data(new)
    assert [new_data[k] for k in unchanged] == [old_data[k] for k in unchanged]
    assert (new_data["normalization"]["q"], new_data["normalization"]["p"]) == (4, 5)


def test_a_key_added_to_an_anchored_sorted_section_is_indented_like_its_keys():
    """The anchored mapping's own column is that of '&n'; the new line used to get it."""
    old = "normalization: &n\n  a: 1\n  c: 3\n"
    assert yamledit.set_values(old, "cfg.yaml", "normalization", {"b": 2}) == (
        "normalization: &n\n  a: 1\n  b: 2\n  c: 3\n"
    )


def test_a_base_written_inside_the_merge_and_aliased_later_is_split():
    """'&d' is written in the '<<:' itself; 'eval: *d' reads it, and is no template."""
    old = "normalization:\n  <<: &d {log_delta_abs_max: 16.0}\neval: *d\n"
    assert yamledit.set_values(old, "cfg.yaml", "normalization", {"log_delta_abs_max": 6.0}) == (
        "normalization:\n  <<: &d {log_delta_abs_max: 16.0}\n  log_delta_abs_max: 6.0\neval: *d\n"
    )


def test_a_section_written_inside_a_merge_and_aliased_is_refusal():
    old = "data:\n  <<: &d\n    normalization: &n {log_delta_abs_max: 16.0}\nother: *n\n"
    with pytest.raises(yamledit.YamlEditError, match=r"^cfg.yaml:4: data.normalization is shared"):
        yamledit.set_values(old, "cfg.yaml", "data.normalization", {"log_delta_abs_max": 6.0})
