"""The byte test that decides which files and functions are parsed (issue 20, item 2): it may
let through files without a site, never drop one that has a site."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import FRAMEWORK, ROOT, copy_tree

from hdrfix.core.engine import plan_run
from hdrfix.core.listing import read_bytes
from hdrfix.core.plugin import discover
from hdrfix.core.repo import Repo
from hdrfix.kit.logdomain import analyse
from hdrfix.kit.logdomain.prefilter import may_exponentiate
from hdrfix.kit.logdomain.reach import _ReachFinder
from hdrfix.kit.targets import site_files
from hdrfix.lang.pyfile import PyFile

VARIANTS = ROOT / "fixtures" / "variants"


def _found(pyfile: PyFile) -> tuple[list[tuple[str, str, int]], list[tuple[int, str]]]:
    analysis = analyse(pyfile)
    return [s.key for s in analysis.sites], [(u.line, u.why) for u in analysis.unhandled]


def _fixture_files() -> list[Path]:
    files = sorted(FRAMEWORK.rglob("*.py")) + sorted(VARIANTS.rglob("*.py"))
    return [p for p in files if "syntax_error" not in p.parts]


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_fixture_file_reads_the_same_with_and_without_the_filter(path, monkeypatch):
    root = path.parent
    pyfile = Repo(root).python(path.name)
    with_filter = _found(pyfile)
    if with_filter != ([], []):
        assert may_exponentiate(path.read_bytes())
    # every function analysed, none skipped by its bytes
    monkeypatch.setattr(_ReachFinder, "_may_exponentiate", lambda self, ref: True)
    pyfile.analyses.clear()
    assert _found(pyfile) == with_filter


HELPER = """\
import numpy as np
import torch


class Exporter:
    def __init__(self, net):
        self.net = net

    def recon(self, log_img, x):
        delta_log = torch.tanh(self.net(x)) * 6.0
        return {formula}
"""

SPELLINGS = {
    # ``pow(`` missed both: a name ending in ``power``, a space before the parenthesis
    "power": "np.power(np.e, log_img + delta_log)",
    "pow_space": "torch.pow (torch.e, log_img + delta_log)",
    # a getattr string written in two pieces: ``exp`` appears nowhere in the bytes
    "split_string": 'getattr(torch, "ex" "p")(log_img + delta_log)',
    "escaped_string": 'getattr(torch, "\\x65xp")(log_img + delta_log)',
    # NFKC: Python reads the fullwidth name as ``exp``
    "fullwidth": "torch.\uff45\uff58\uff50(log_img + delta_log)",
}


@pytest.mark.parametrize("name", sorted(SPELLINGS))
def test_a_site_spelled_without_the_old_needles_is_found(name, tmp_path):
    """None of these files takes a log (the log image is handed in), and each spells its exp
    so that the old test (``exp``/``**``/``pow(``, and ``log(``) dropped it unparsed."""
    root = copy_tree(FRAMEWORK, tmp_path / "repo")
    (root / "tools" / "export_recon.py").write_text(
        HELPER.format(formula=SPELLINGS[name]), encoding="utf-8"
    )
    repo = Repo(root)
    assert analyse(repo.python("tools/export_recon.py")).sites, "the analysis sees the site"
    assert "tools/export_recon.py" in site_files(repo, {}).others


def test_an_exp_alias_is_followed_into_functions_that_never_spell_exp(tmp_path):
    (tmp_path / "alias.py").write_text(
        textwrap.dedent(
            """\
            import torch
            from torch import exp as back


            def recon(net, log_img, x):
                delta_log = torch.tanh(net(x)) * 6.0
                return back(log_img + delta_log)
            """
        ),
        encoding="utf-8",
    )
    analysis = analyse(Repo(tmp_path).python("alias.py"))
    assert [s.ref.qualname for s in analysis.sites] == ["recon"]


def test_words_that_merely_contain_exp_do_not_pass():
    text = b"try:\n    x = y.expand(3)\nexcept ValueError:\n    export = 'powerful'\n"
    assert not may_exponentiate(text)
    assert may_exponentiate(text + b"z = x.exp()\n")
    assert may_exponentiate(text + b"z = 2.718 ** x\n")


def test_each_file_is_read_once_in_a_run(tmp_path, monkeypatch):
    """Three lookups filter every .py file (framework, sites elsewhere, network); the files
    parsed are not read again either."""
    root = copy_tree(FRAMEWORK, tmp_path / "repo")
    for i in range(20):
        (root / "lib" / f"m{i}.py").parent.mkdir(exist_ok=True)
        (root / "lib" / f"m{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
    reads: list[str] = []
    real_read_bytes = Path.read_bytes

    def counting_read_bytes(self):
        reads.append(Path(self).resolve().relative_to(root.resolve()).as_posix())
        return real_read_bytes(self)

    def counting_read(path):
        reads.append(Path(path).resolve().relative_to(root.resolve()).as_posix())
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", counting_read_bytes)
    monkeypatch.setattr("hdrfix.core.repo.read_bytes", counting_read)
    include = {"include": ["src/npu/networks/patch_inpainting.py"]}
    monkeypatch.chdir(root)
    plan_run(Repo(root), ["phase1", "phase2"], discover(), include)
    py_reads = [r for r in reads if r.endswith(".py")]
    assert len(py_reads) == len(set(py_reads)), sorted(py_reads)
    assert "lib/m3.py" in py_reads  # the filter did read them


SPACED_CALLS = ["self._recon (log_img, delta_log)", "self._recon \\\n(log_img, delta_log)"]


@pytest.mark.parametrize("call", SPACED_CALLS)
def test_a_helper_called_with_a_space_before_its_parenthesis_is_followed(call, tmp_path):
    """The callers of a helper are looked for in the bytes first: ``name(`` missed these."""
    (tmp_path / "spaced.py").write_text(
        "import torch\n\n\nclass T:\n"
        "    def _recon(self, log_img, delta_log):\n"
        "        return torch.exp(log_img + delta_log)\n\n"
        "    def training_step(self, batch):\n"
        "        delta_log = torch.tanh(self.net(batch)) * 6.0\n"
        "        log_img = torch.log(batch + 1e-6)\n"
        f"        return {call}\n",
        encoding="utf-8",
    )
    analysis = analyse(Repo(tmp_path).python("spaced.py"))
    assert [(s.ref.qualname, s.residual) for s in analysis.sites] == [
        ("T.training_step", "delta_log")
    ]
    assert not analysis.unhandled
