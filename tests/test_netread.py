"""phase2's ``ast`` reading of the network says *done* only where its libcst planner would find
nothing to do, and says it for every network phase2 has been applied to (so ``--check`` on an
applied repository never imports libcst: tests/test_imports.py)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import libcst as cst
import pytest
from conftest import ROOT

from hdrfix.lang.pyfile import PyFile
from hdrfix.lang.sourcefile import SourceFile
from hdrfix_plugins.phase2 import netread
from hdrfix_plugins.phase2.network import Unrecognised, bound_forward, has_scale_parameter

NETWORK = "src/npu/networks/patch/patch_network.py"

FORWARDS = [
    "def forward(self, x):\n    r = self.head(x)\n    return r\n",
    "def forward(self, x):\n    r = self.head(x)\n    r = r[:, :, :8]\n    return r, x + r\n",
    "def forward(self, x):\n    return self.head(x)\n",
    "def forward(self, x):\n    return [self.coarse(x), self.fine(x)]\n",
    "def forward(self, x):\n    out = []\n    for l in self.levels:\n"
    "        out.append(l(x))\n    return out\n",
    "def forward(self, x, full=False):\n    r = self.head(x)\n    if full:\n"
    "        return r, x + r\n    return r\n",
    "def forward(self, x):\n    a = self.aux(x)\n    r = self.head(x)\n    return a, r\n",
    "def forward(self, x):\n    r = self.head(x)\n    try:\n        r = self.fix(r)\n"
    "    except RuntimeError:\n        pass\n    return r\n",
    "def forward(self, x):\n    r = self.head(x)\n    match x:\n        case _:\n"
    "            r = self.other(x)\n    return r\n",
    "def forward(self, x):\n    return None\n",
    "def forward(self, x):\n    r = self.head(x)\n    r2 = r * 2\n    return (r2)\n",
    "def forward(self, x):\n    r = torch.tanh(self.head(x)) * self.residual_output_scale\n"
    "    r = r[:, :3]\n    return r\n",
    "def forward(self, x):\n    r = (self.residual_output_scale * (torch.tanh(self.head(x))))\n"
    "    s = lambda r: r\n    return s(r), r\n",
    "def forward(self, x):\n    r = torch.tanh(self.head(x)) * self.residual_output_scale\n"
    "    r = self.head(x)\n    return r\n",
    "def forward(self, x):\n    if x is None: return torch.tanh(x) * self.residual_output_scale\n"
    "    return self.head(x)\n",
    "def forward(self, x):\n    return (*self.head(x),)\n",
    "def forward(self, x):\n    r = torch.tanh(self.head(x)) * 6.0\n    return r\n",
    "def forward(self, x):\n    return self.head(x) * self.residual_output_scale\n",
    "def forward(self, x):\n    r = torch.tanh(self.head(x)) + self.residual_output_scale\n"
    "    return r\n",
]


def _networks() -> list[str]:
    return [
        p.read_text(encoding="utf-8") for p in sorted((ROOT / "fixtures").rglob("patch_network.py"))
    ]


def _forwards() -> list[str]:
    """Each snippet, and the forward of each fixture network (as a top-level function)."""
    found = list(FORWARDS)
    for text in _networks():
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "forward":
                segment = ast.get_source_segment(text, node, padded=True) or ""
                found.append(textwrap.dedent(segment) + "\n")
    return found


def _covered(source: str, element: int | None) -> bool:
    """The ast answer for the forward that ``source`` defines (its only top-level function)."""
    pyfile = PyFile.parse(SourceFile(Path("."), "n.py", source.encode(), "utf-8", b"", source))
    return netread.forward_covered(pyfile, pyfile.node(pyfile.functions[0]), element)


def _cst_done(source: str, element: int | None) -> tuple[bool | None, str | None]:
    """libcst's answer (None where it refuses the shape) and the bounded forward's text."""
    fn = cst.parse_module(source).body[0]
    assert isinstance(fn, cst.FunctionDef)
    try:
        plan = bound_forward(fn, "torch", element)
    except Unrecognised:
        return None, None
    return plan.done, None if plan.done else cst.Module([plan.edit.apply(fn)]).code


@pytest.mark.parametrize("element", [None, 1])
@pytest.mark.parametrize("source", _forwards())
def test_covered_by_ast_means_done_for_libcst_and_done_once_bounded(source, element):
    done, bounded = _cst_done(source, element)
    if _covered(source, element):
        assert done is True
    if bounded is not None:
        assert _cst_done(bounded, element)[0] is True
        assert _covered(bounded, element), bounded


def test_the_shapes_above_hold_both_answers():
    """Else the implications above would hold by never being put to the test."""
    answers = {_covered(s, None) for s in _forwards()}
    assert answers == {True, False}
    assert sum(_cst_done(s, None)[1] is not None for s in _forwards()) >= 10


INITS = [
    "def __init__(self):\n    super().__init__()\n    self.head = nn.Conv2d(4, 3, 1)\n",
    "def __init__(self):\n    super().__init__()\n"
    "    self.residual_output_scale = nn.Parameter(torch.tensor([6.0]))\n",
    "def __init__(self):\n    super().__init__()\n"
    "    self.residual_output_scale: nn.Parameter = nn.Parameter(torch.ones(1))\n",
    "def __init__(self):\n    super().__init__()\n"
    "    self.register_parameter('residual_output_scale', nn.Parameter(torch.ones(1)))\n",
    "def __init__(self):\n    super().__init__()\n"
    "    self.register_parameter(name='residual_output_scale', param=None)\n",
    "def __init__(self):\n    super().__init__()\n    self.a = self.residual_output_scale = 1\n",
    "def __init__(self):\n    super().__init__()\n    self.residual_output_scale += 1\n",
    "def __init__(self):\n    super().__init__()\n"
    "    def later():\n        self.residual_output_scale = 1\n",
    "def __init__(self):\n    super().__init__()\n    other.residual_output_scale = 1\n",
]


@pytest.mark.parametrize("source", INITS)
def test_the_scale_parameter_is_found_by_ast_only_where_libcst_finds_it(source):
    ours = netread.has_scale_parameter(ast.parse(source).body[0], source)  # type: ignore[arg-type]
    fn = cst.parse_module(source).body[0]
    assert isinstance(fn, cst.FunctionDef)
    if ours:
        assert has_scale_parameter(fn)


def test_the_inits_above_hold_both_answers():
    answers = [
        netread.has_scale_parameter(ast.parse(s).body[0], s)  # type: ignore[arg-type]
        for s in INITS
    ]
    assert True in answers and False in answers
