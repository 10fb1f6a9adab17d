"""The ``ast`` readings that let ``status`` and ``--check`` skip libcst give libcst's answers:
where ``__init__`` reads the section, which settings it reads and on which line, and whether a
training step already adds phase3's term. Checked on every fixture trainer and on shapes
chosen to split the two (one-line suites, ``;``, keyword keys, nested functions, ``match``)."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from conftest import fixture_sources

from hdrfix.kit.settingreads import assigned_line, settings_mapping
from hdrfix.kit.trainersetting import assigning, find_settings
from hdrfix.lang.cst.lines import FunctionLines
from hdrfix.lang.cst.match import assignments
from hdrfix.lang.pyfile import PyFile
from hdrfix.lang.sourcefile import SourceFile
from hdrfix_plugins.phase3.keys import WEIGHT_KEY
from hdrfix_plugins.phase3.phase import _weighted_add_line
from hdrfix_plugins.phase3.term import _weighted_add

KEYS = ["log_delta_abs_max", "log_epsilon", "residual_loss", "residual_loss_weight", "x"]


def under(head: str, *bodies: str) -> list[str]:
    return [head + body for body in bodies]


INIT = "class T:\n    def __init__(self, config):\n        norm = config.get('n', {})\n"
K = "'log_delta_abs_max'"
SHAPES = under(
    INIT,
    f"        self.log_delta_abs_max = float(norm.get({K}, 0.0))\n",
    f"        if norm: self.log_delta_abs_max = norm.get({K})\n",
    f"        x = 1; self.log_delta_abs_max = norm.get({K})\n",
    f"        self.log_delta_abs_max: float = norm.get(key={K})\n",
    "        self.log_delta_abs_max = norm.get('log_delta_' 'abs_max')\n",
    f"        def later():\n            self.x = norm.get({K})\n",
    f"        match norm:\n            case _:\n                self.x = norm.get({K})\n",
    f"        try:\n            self.x = norm.get({K})\n"
    "        except* ValueError:\n            pass\n",
    "        try:\n            pass\n        except* ValueError:\n"
    f"            self.x = norm.get({K})\n",
    "        try:\n            self.x = 1\n        except KeyError: self.y = 2\n"
    f"        self.z = norm.get({K})\n",
    f"        if norm:\n            pass\n        else: self.x = norm.get({K})\n",
    "        if norm:\n            pass\n        elif norm.get('a'):\n"
    f"            self.log_epsilon = norm.get({K})\n",
    f"        self.a = self.x = norm.get({K})\n",
    f"        self.x = norm.get(b{K})\n",
    f"        self.x = norm.get(*[{K}])\n",
    f"        with open(norm) as f:\n            self.x = f.get({K})\n"
    "        self.residual_loss = str(norm.get('residual_loss', 'none'))\n",
    f"        (self.x) = norm.get({K})\n",
    # found by an adversarial review: what line numbers alone do not show
    f"        if norm: \\\n            self.log_delta_abs_max = norm.get({K})\n",
    f"        x = (1,\n          2); self.log_delta_abs_max = norm.get({K})\n",
    f"        x = 1; \\\n        self.log_delta_abs_max = norm.get({K})\n",
    "        try:\n            pass\n        except E:\n            self.x = 1\n"
    f"        else:\n            self.x = 2\n        self.y = norm.get({K})\n",
    f"        # a note: \\\n        self.x = norm.get({K})\n",
    # a lone CR ends a line for ast, not for a reader that splits on LF only
    f"        a = 1  # old line\r        if norm: self.log_delta_abs_max = norm.get({K})\n",
)
SHAPES.append((SHAPES[1]).replace("\n", "\r"))  # every line ended by a lone CR


def _pyfile(text: str) -> PyFile:
    return PyFile.parse(SourceFile(Path("."), "t.py", text.encode(), "utf-8", b"", text))


def _trainers() -> list[str]:
    paths = fixture_sources("def __init__", "def training_step")
    return [p.read_text(encoding="utf-8") for p in paths] + SHAPES


def _cst_line(pyfile: PyFile, ref, node) -> int:
    return FunctionLines(ref, pyfile.cst(ref), pyfile).line(node)


@pytest.mark.parametrize("text", _trainers(), ids=range(len(_trainers())))
def test_init_reads_as_libcst_reads_them(text):
    pyfile = _pyfile(text)
    for ref in pyfile.functions:
        if ref.name != "__init__":
            continue
        node, fn = pyfile.node(ref), pyfile.cst(ref)
        assert (settings_mapping(pyfile, node) is None) == (find_settings(fn) is None)
        for key in KEYS:
            theirs = assigning(fn, key)
            ours = assigned_line(pyfile, node, key)
            assert ours == (None if theirs is None else _cst_line(pyfile, ref, theirs)), key


STEP = "class T:\n    def training_step(self, b):\n        loss = self.f(b)\n"
STEPS = under(
    STEP,
    f"        loss = loss + self.{WEIGHT_KEY} * d\n        return loss\n",
    f"        if b: loss = loss + d * self.{WEIGHT_KEY}\n        return loss\n",
    f"        x = 1; loss = loss + (2 * self.{WEIGHT_KEY}) * d\n        return loss\n",
    f"        loss = loss + self.{WEIGHT_KEY} * d + 1\n        return loss\n",
    f"        loss += self.{WEIGHT_KEY} * d\n        return loss\n",
    f"        total = loss + self.{WEIGHT_KEY} * d\n        return total\n",
    f"        def inner():\n            loss = loss + self.{WEIGHT_KEY} * d\n        return loss\n",
    "        match b:\n            case _:\n"
    f"                loss = loss + self.{WEIGHT_KEY} * d\n        return loss\n",
    f"        try:\n            pass\n        except* E:\n"
    f"            loss = loss + self.{WEIGHT_KEY} * d\n        return loss\n",
    f"        x = (1,\n 2); loss = loss + self.{WEIGHT_KEY} * d\n        return loss\n",
    f"        x = 1; \\\n        loss = loss + self.{WEIGHT_KEY} * d\n        return loss\n",
    STEP
    + f"        if b: \\\n            loss = loss + self.{WEIGHT_KEY} * d\n        return loss\n",
    f"        try:\n            pass\n        except E:\n"
    f"            loss = loss + self.{WEIGHT_KEY} * a\n        else:\n"
    f"            loss = loss + self.{WEIGHT_KEY} * b\n        return loss\n",
    f"        for i in b:\n            pass\n        else:\n"
    f"            loss = (loss + self.{WEIGHT_KEY} * d)\n        return loss\n",
)


@pytest.mark.parametrize("text", _trainers() + STEPS, ids=range(len(_trainers() + STEPS)))
def test_the_term_is_found_where_libcst_finds_it(text):
    pyfile = _pyfile(text)
    for ref in pyfile.functions:
        if ref.name != "training_step":
            continue
        fn = pyfile.cst(ref)
        added = next((a for a in assignments(fn.body) if _weighted_add(a, {WEIGHT_KEY})), None)
        theirs = None if added is None else _cst_line(pyfile, ref, added.chain[-1].stmt)
        assert _weighted_add_line(pyfile, pyfile.node(ref)) == theirs


def test_the_shapes_hold_both_answers():
    """Else the equalities above would hold by comparing None with None."""
    mappings = [settings_mapping(p, p.node(r)) for p in map(_pyfile, SHAPES) for r in p.functions]
    assert any(m is None for m in mappings) and any(m is not None for m in mappings)
    terms = [
        _weighted_add_line(p, p.node(r))
        for p in map(_pyfile, STEPS)
        for r in p.functions
        if r.name == "training_step"
    ]
    assert any(t is None for t in terms) and any(t is not None for t in terms)
    assert isinstance(cst.parse_module(SHAPES[0]), cst.Module)
