"""Statements spliced in as text (hdrfix.lang.splice) read byte for byte as libcst renders the
same edit, on every layout around the anchor; layouts where they might not go to libcst."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from conftest import fixture_sources
from hypothesis import given, settings
from hypothesis import strategies as st

from hdrfix.kit.logdomain import analyse
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.inserts import Inserts
from hdrfix.lang.pyfile import PyFile
from hdrfix.lang.sourcefile import SourceFile
from hdrfix_plugins.phase1.phase import _ClampSite

ROOT = Path(__file__).resolve().parent.parent
CLAMP = _ClampSite(8.0)


def _pyfile(text: str, rel: str = "t.py") -> PyFile:
    raw = text.encode()
    return PyFile.parse(SourceFile(Path("."), rel, raw, "utf-8", b"", text))


@functools.cache  # the coverage count below reads the fixtures' results again
def both_ways(text: str, rel: str = "t.py") -> list[tuple[str | None, str]]:
    """Per function phase1 edits: the file as the splice writes it (None where it declines)
    and as libcst writes it."""
    pyfile = _pyfile(text, rel)
    analysis = analyse(pyfile)
    edits: dict[str, tuple[object, Inserts]] = {}
    for site in analysis.sites:
        if CLAMP.done(pyfile, analysis, site):
            continue
        for ref, edit in CLAMP.edit(pyfile, analysis, site):
            if ref.qualname in edits:
                edits[ref.qualname][1].merge(edit)
            else:
                edits[ref.qualname] = (ref, edit)
    results = []
    for ref, edit in edits.values():
        node = edit.through_libcst(pyfile, ref)  # type: ignore[arg-type]
        by_libcst = pyfile.reparsed({ref.qualname: node}).text()  # type: ignore[attr-defined]
        spliced = edit.applied(pyfile, ref)  # type: ignore[arg-type]
        by_text = (
            pyfile.reparsed({ref.qualname: spliced}).text() if isinstance(spliced, str) else None
        )
        results.append((by_text, by_libcst))
    return results


HEAD = (
    "import torch\n\n\nclass T:\n    def step(self, x, log_img, pred):\n"
    "        if self.log_delta_abs_max > 0:\n"
    "            delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max\n"
    "        else:\n"
    "            delta_log = (self.log_delta_scale * x) * torch.tanh(pred)\n"
)
USE = "        return torch.exp(log_img + delta_log)\n"


def test_a_blank_line_after_the_modes_is_spliced_as_libcst_would():
    [(by_text, by_libcst)] = both_ways(HEAD + "\n" + USE)
    assert by_text is not None
    assert by_text == by_libcst
    assert "torch.tanh(pred)\n        delta_log = torch.clamp(" in by_text


@pytest.mark.parametrize(
    "after",
    [
        "            # a comment the else block owns\n",
        "\n            # owned too, with the blank line above it\n",
        "            \n",  # whitespace at the block's indent: libcst's footer too
    ],
)
def test_deeper_lines_after_the_modes_go_to_libcst(after):
    [(by_text, by_libcst)] = both_ways(HEAD + after + USE)
    assert by_text is None
    assert by_libcst.index("# a comment" if "comment" in after else "torch.clamp") > 0


def test_an_anchor_sharing_its_line_goes_to_libcst():
    text = "import torch\n\n\ndef f(x, log_img, pred):\n"
    text += "    delta_log = torch.tanh(pred) * 6.0; other = 1\n"
    text += "    return torch.exp(log_img + delta_log)\n"
    [(by_text, by_libcst)] = both_ways(text)
    assert by_text is None
    assert "6.0; delta_log = torch.clamp(delta_log, min=-8.0, max=8.0); other = 1" in by_libcst


def test_a_one_line_if_is_a_whole_anchor():
    text = "import torch\n\n\ndef f(x, log_img, pred):\n    delta_log = pred\n"
    text += "    if x is not None: delta_log = torch.tanh(pred) * 6.0  # capped\n"
    text += "    return torch.exp(log_img + delta_log)\n"
    [(by_text, by_libcst)] = both_ways(text)
    assert by_text == by_libcst
    assert "# capped\n    delta_log = torch.clamp(" in by_text


def test_crlf_is_spliced_with_crlf_and_a_file_without_a_final_newline_goes_to_libcst():
    crlf = (HEAD + "\n" + USE).replace("\n", "\r\n")
    [(by_text, by_libcst)] = both_ways(crlf)
    assert by_text == by_libcst and "max=8.0)\r\n" in by_text
    [(by_text, _)] = both_ways(HEAD + USE.rstrip("\n"))
    assert by_text is None


def test_tabs_are_spliced_with_the_anchors_own_indent():
    text = (HEAD + "\n" + USE).replace("    ", "\t")
    [(by_text, by_libcst)] = both_ways(text)
    assert by_text == by_libcst and "\n\t\tdelta_log = torch.clamp" in by_text


def _fixture_files() -> list[Path]:
    return fixture_sources("exp(")


@pytest.mark.parametrize(
    "path", _fixture_files(), ids=lambda p: str(p.relative_to(ROOT / "fixtures"))
)
def test_every_fixture_site_reads_the_same_either_way(path):
    text = path.read_bytes().decode("utf-8")
    for by_text, by_libcst in both_ways(text, path.name):
        if by_text is not None:
            assert by_text == by_libcst


def test_the_fixtures_mostly_take_the_text_way():
    """Else the comparison above would pass by comparing nothing."""
    spliced = sum(
        by_text is not None
        for path in _fixture_files()
        for by_text, _ in both_ways(path.read_text(encoding="utf-8"), path.name)
    )
    assert spliced >= 10


_LINES = st.sampled_from(
    ["\n", "    \n", "        \n", "            \n", "        # c\n", "            # c\n",
     "    # c\n", "# c\n", "\t\n"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    after=st.lists(_LINES, max_size=4),
    then=st.sampled_from(["", "        x = 1\n"]),
    trailing=st.sampled_from(["", "  # mode", "  "]),
    simple=st.booleans(),
)
def test_any_lines_after_the_anchor_read_the_same_either_way(after, then, trailing, simple):
    head = HEAD.replace("torch.tanh(pred)\n", f"torch.tanh(pred){trailing}\n")
    if simple:
        head = (
            head.split("        if self")[0] + f"        delta_log = torch.tanh(pred){trailing}\n"
        )
    [(by_text, by_libcst)] = both_ways(head + "".join(after) + then + USE)
    if by_text is not None:
        assert by_text == by_libcst
    else:
        # declined only after a compound anchor, for a line indented deeper than it
        assert not simple
        assert any(len(line) - len(line.lstrip(" \t")) > 8 for line in after)


@pytest.mark.parametrize(
    "header", ["import torch\n\n\nclass T:\r\n", "import torch\r\n\r\n\r\nclass T:\n"]
)
def test_a_method_whose_line_endings_are_not_the_files_first_goes_to_libcst(header):
    """libcst parses a method under a line ended by the file's first newline, and takes its
    newline from there (an adversarial review found this)."""
    newline = "\r\n" if header.endswith("T:\r\n") else "\n"
    body = "    def step(self, x, log_img, pred):\n        delta_log = torch.tanh(pred) * 9.0\n"
    body += "        return torch.exp(log_img + delta_log)\n"
    [(by_text, by_libcst)] = both_ways(header + body.replace("\n", newline))
    assert by_text is None
    assert "torch.clamp(" in by_libcst


@pytest.mark.parametrize("where", ["\n    \\\n", "\n    y = 1\n    \\\n"])
def test_a_line_holding_only_a_continuation_goes_to_libcst(where):
    """libcst drops such a line; the splice would keep it, so the two would differ."""
    text = "import torch\n\n\ndef f(x, log_img, pred):\n    delta_log = torch.tanh(pred) * 9.0"
    text += where + "    return torch.exp(log_img + delta_log)\n"
    [(by_text, by_libcst)] = both_ways(text)
    assert by_text is None
    assert "torch.clamp(" in by_libcst


def test_a_function_libcst_cannot_parse_is_not_spliced_either():
    """Where libcst refuses the function, the run says so (exit 2), as before the splice."""
    text = (
        "import torch\n\n\ndef f(x, log_img, pred):\n\\\n    delta_log = torch.tanh(pred) * 9.0\n"
    )
    text += "    return torch.exp(log_img + delta_log)\n"
    pyfile = _pyfile(text)
    analysis = analyse(pyfile)
    [site] = analysis.sites
    [(ref, edit)] = CLAMP.edit(pyfile, analysis, site)
    with pytest.raises(HdrfixError, match="libcst cannot parse f"):
        edit.applied(pyfile, ref)
