"""phase2's edits planned on ``ast`` and written as text (netplain, modea_plain) read byte for
byte as libcst's planners write them, on every shape the suite knows; where the two might
differ the ``ast`` planner declines and libcst answers (with its refusal, where it refuses)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
from conftest import fixture_sources
from hypothesis import given, settings
from hypothesis import strategies as st

from hdrfix.kit.logdomain import analyse
from hdrfix.kit.sitepatch import Unhandled
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.pyfile import PyFile
from hdrfix.lang.sourcefile import SourceFile
from hdrfix_plugins.phase2 import netplain, netread
from hdrfix_plugins.phase2 import network as net
from hdrfix_plugins.phase2.modea import ModeASite
from hdrfix_plugins.phase2.modea_plain import plain_edit
from hdrfix_plugins.phase2.modea_rewrite import edit as cst_edit

ROOT = Path(__file__).resolve().parent.parent


def _pyfile(text: str, rel: str = "t.py") -> PyFile:
    return PyFile.parse(SourceFile(Path("."), rel, text.encode(), "utf-8", b"", text))


def _with(pyfile: PyFile, ref, fn) -> str:
    return pyfile.reparsed({ref.qualname: fn}).text()


@functools.cache  # the coverage test below reads the fixtures' results again
def _network_both_ways(text: str, rel: str) -> list[tuple[str | None, str | None]]:
    """(the plain planner's file, libcst's file) for ``__init__`` and ``forward`` of every
    ``PatchNetwork`` edit; None where a planner declines, refuses or finds it done."""
    pyfile = _pyfile(text, rel)
    torch, nn = netread.torch_names(pyfile.tree, rel)
    out: list[tuple[str | None, str | None]] = []
    init = pyfile.function("PatchNetwork.__init__")
    if init is not None:
        plain = netplain.init_inserts(pyfile, init, torch, nn, 6.0)
        by_text = _with(pyfile, init, plain.applied(pyfile, init)) if plain else None
        try:
            edit = net.add_scale_parameter(pyfile.cst(init), torch, nn, 6.0)
            by_libcst = (
                None
                if net.has_scale_parameter(pyfile.cst(init))
                else _with(pyfile, init, edit.apply(pyfile.cst(init)))
            )
        except net.Unrecognised:
            by_libcst = None
        out.append((by_text, by_libcst))
    forward = pyfile.function("PatchNetwork.forward")
    if forward is not None:
        for element in (None, 1):
            plain = netplain.forward_inserts(pyfile, forward, torch, element)
            by_text = _with(pyfile, forward, plain.applied(pyfile, forward)) if plain else None
            try:
                bounded = net.bound_forward(pyfile.cst(forward), torch, element)
                by_libcst = (
                    None
                    if bounded.done
                    else _with(pyfile, forward, bounded.edit.apply(pyfile.cst(forward)))
                )
            except net.Unrecognised:
                by_libcst = None
            out.append((by_text, by_libcst))
    return out


@functools.cache
def _mode_a_both_ways(text: str, rel: str = "t.py") -> list[tuple[str | None, str | None]]:
    pyfile = _pyfile(text, rel)
    analysis = analyse(pyfile)
    out: list[tuple[str | None, str | None]] = []
    for site in analysis.sites:
        if ModeASite().done(pyfile, analysis, site):
            continue
        plain = plain_edit(pyfile, site)
        by_text = _with(pyfile, site.ref, plain.applied(pyfile, site.ref)) if plain else None
        try:
            [(ref, edit)] = cst_edit(pyfile, site)
            by_libcst = _with(pyfile, ref, edit.apply(pyfile.cst(ref)))
        except Unhandled:
            by_libcst = None
        out.append((by_text, by_libcst))
    return out


def _agree(pairs: list[tuple[str | None, str | None]]) -> int:
    """Every answer of the plain planner is libcst's; how many it gave."""
    for by_text, by_libcst in pairs:
        if by_text is not None:
            assert by_text == by_libcst
    return sum(by_text is not None for by_text, _ in pairs)


NETWORKS = fixture_sources("class PatchNetwork")
SITES = fixture_sources("tanh(")


@pytest.mark.parametrize("path", NETWORKS, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_every_fixture_network_reads_the_same_either_way(path):
    _agree(_network_both_ways(path.read_text(encoding="utf-8"), path.name))


@pytest.mark.parametrize("path", SITES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_every_fixture_mode_a_reads_the_same_either_way(path):
    try:
        _agree(_mode_a_both_ways(path.read_text(encoding="utf-8"), path.name))
    except HdrfixError:
        pytest.skip("not a file the analysis reads")  # (none today; a variant may be)


def test_the_fixtures_mostly_take_the_text_way():
    """Else the comparisons above would pass by comparing nothing."""
    networks = sum(_agree(_network_both_ways(p.read_text(), p.name)) for p in NETWORKS)
    modes = sum(_agree(_mode_a_both_ways(p.read_text(), p.name)) for p in SITES)
    assert networks >= 10
    assert modes >= 10


NET = """import torch
import torch.nn as nn


class PatchNetwork(nn.Module):
    def __init__(self, c=3):
        super().__init__()
        self.head = nn.Conv2d(c, c, 1)

    def forward(self, x, full=False):
{body}"""


@pytest.mark.parametrize(
    "body",
    [
        "        r = self.head(x)\n        return r\n",
        "        r = self.head(x)\n        if r.shape != x.shape:\n"
        "            r = r[:, :, :4]\n\n        if full:\n            return r, x + r\n"
        "        return r\n",
        "        r = self.head(x)\n        r = torch.nn.functional.interpolate(r, size=4)\n"
        "        # the output\n        return r\n",
        "        if full:\n            r = self.head(x)\n            return x + r, r\n"
        "        elif x is None:\n            return None\n        else:\n"
        "            if True:\n                r = self.head(x) * 2\n            return r\n",
        "        try:\n            r = self.head(x)\n        except ValueError:\n"
        "            raise\n        for i in range(2):\n            x = x + 1\n        return r\n",
        "        with torch.no_grad():\n            r = self.head(x)\n        return r\n",
        "        r = self.head(x); return r\n",  # a dense line: libcst's
        "        r = [self.head(x)]\n        return r\n",  # a list of levels: libcst's
        "        return self.head(x)\n",  # a call wrapped in place: libcst's
        "        r = self.head(x)\n        f = lambda t: t\n        return f(r)\n",
        "        r = self.head(x)\n        return torch.tanh(r) * self.residual_output_scale\n",
        "        r = self.head(x)\n\x0c        return r\n",  # a form feed: libcst drops it
    ],
)
def test_named_forward_shapes_read_the_same_either_way(body):
    _agree(_network_both_ways(NET.format(body=body), "net.py"))


def test_the_plain_forward_bound_goes_after_the_post_processing():
    body = "        r = self.head(x)\n        if r.shape != x.shape:\n            r = r[:, :3]\n"
    [_, (by_text, _), _] = _network_both_ways(NET.format(body=body + "        return r\n"), "n")
    assert by_text is not None
    assert body + "        r = torch.tanh(r) * self.residual_output_scale\n" in by_text


def test_an_init_that_mentions_the_scale_goes_to_libcst():
    text = NET.format(body="        return x\n").replace(
        "super().__init__()", "super().__init__()\n        # residual_output_scale: later"
    )
    pyfile = _pyfile(text)
    init = pyfile.function("PatchNetwork.__init__")
    assert netplain.init_inserts(pyfile, init, "torch", "nn", 6.0) is None


MODE = """import torch


class T:
    def step(self, log_img, pred, scale):
        cap = self.log_delta_abs_max
        if self.log_delta_abs_max > 0:
            delta_log = {value}
        else:
            delta_log = pred * scale
        return torch.exp(log_img + delta_log)
"""


@pytest.mark.parametrize(
    "value",
    [
        "self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max * scale",
        "(self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max * scale)",
        "torch.tanh( pred )*cap*(scale)",
        "pred.tanh() * self.log_delta_alpha * self.gain",
        "torch.tanh(pred + 1.0) * float(self.config['log_delta_alpha'])",
        "torch.tanh(pred) * f'log_delta_alpha' * scale",
        "torch.tanh(pred) * 2.0 * cap",  # a number beside the tanh: refused by libcst
        "torch.tanh(pred) * (cap + scale)",  # the cap mixed in: refused by libcst
        "torch.tanh(pred) * cap if scale else pred",
        "torch.tanh(pred) \\\n                * cap * scale",
        "torch.tanh(pred) * cap * scale  # capped",
        "torch.tanh(pred) * cap * (scale, 1)[0]",
        "torch.tanh(pred) * cap * (-scale)",
        # strings joined side by side: libcst reads each literal alone, ast their joined value
        "torch.tanh(pred) * cap * cfg['log_delta_alpha' 'x']",
        "torch.tanh(pred) * cap * float(cfg.get('log_delta_alpha' '_x')) * scale",
        # a factor across lines: libcst re-indents its later lines
        "(torch.tanh(pred) * cap * (scale\n                + 1))",
        "torch.tanh(pred) * cap * f(scale,\n                1)",
    ],
)
def test_named_mode_a_shapes_read_the_same_either_way(value):
    _agree(_mode_a_both_ways(MODE.format(value=value)))


def test_a_plain_mode_a_becomes_the_prediction_times_the_kept_factors():
    [(by_text, _)] = _mode_a_both_ways(MODE.format(value="torch.tanh(pred) * cap * scale"))
    assert by_text is not None
    assert "            delta_log = pred * scale\n        else:" in by_text


_FACTORS = st.sampled_from(
    ["self.log_delta_alpha", "self.log_delta_abs_max", "cap", "scale", "(scale)", "self.gain",
     "(scale + 1)", "float(self.log_delta_alpha)", "scale[0]", "-scale", "torch.ones(1)"]
)  # fmt: skip
_TANH = st.sampled_from(
    ["torch.tanh(pred)", "torch.tanh( pred )", "torch.tanh((pred))", "pred.tanh()",
     "torch.tanh(pred * 2)", "torch.tanh(pred - 1)", "torch.tanh(\n                pred)",
     "(torch.tanh(pred))", "torch.tanh(pred, out=None)"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(_FACTORS, max_size=2),
    tanh=_TANH,
    after=st.lists(_FACTORS, max_size=3),
    star=st.sampled_from([" * ", "*", "  *  "]),
    wrap=st.booleans(),
)
def test_any_mode_a_product_reads_the_same_either_way(before, tanh, after, star, wrap):
    value = star.join([*before, tanh, *after])
    if wrap:
        value = f"({value})"
    text = MODE.format(value=value)
    try:
        ast.parse(text)
    except SyntaxError:
        return
    _agree(_mode_a_both_ways(text))


def test_a_parenthesised_tanh_goes_with_the_cap_through_libcst_too():
    """libcst's rewrite once kept ``(torch.tanh(pred))`` as a factor (found among one list of
    factors, removed from another): the model would apply tanh twice."""
    text = MODE.format(value="0").replace(
        "delta_log = 0", "delta_log: torch.Tensor = (torch.tanh(pred)) * cap * scale"
    )
    pyfile = _pyfile(text)
    analysis = analyse(pyfile)
    [site] = [s for s in analysis.sites if not ModeASite().done(pyfile, analysis, s)]
    assert plain_edit(pyfile, site) is None  # an annotated root: libcst's
    [(ref, edit)] = ModeASite().edit(pyfile, analysis, site)
    assert "delta_log: torch.Tensor = pred * scale\n" in _with(
        pyfile, ref, edit.apply(pyfile.cst(ref))
    )


def test_a_cap_local_from_joined_strings_goes_to_libcst():
    text = MODE.format(value="torch.tanh(pred) * c2 * cap * scale").replace(
        "        cap = self", "        c2 = cfg['log_delta_alpha' 'x']\n        cap = self"
    )
    pyfile = _pyfile(text)
    [site] = analyse(pyfile).sites
    assert plain_edit(pyfile, site) is None
    [(_, by_libcst)] = _mode_a_both_ways(text)
    assert by_libcst is not None and "delta_log = pred * scale\n" in by_libcst


def test_a_product_inside_the_tanh_written_across_lines_keeps_its_parentheses():
    """Taken out of the tanh's brackets, ``pred\\n * 2`` would end the statement at its line
    break: libcst's rewrite once wrote that, and the edit was refused as a syntax error."""
    text = MODE.format(value="(torch.tanh(pred\n                * 2) * cap)")
    [(by_text, by_libcst)] = _mode_a_both_ways(text)
    assert by_text is None
    assert by_libcst is not None
    ast.parse(by_libcst)
    assert "delta_log = (pred\n                * 2)\n" in by_libcst
