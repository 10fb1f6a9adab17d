"""A statement's line, read from the ``ast`` statement it pairs with, is the line libcst's
position metadata gives: on every statement of every function of the fixture and its variants
(CRLF, one-line ``if``, continuation lines and decorators included)."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from conftest import FRAMEWORK

from hdrfix.lang.cst.index import cst_index
from hdrfix.lang.cst.lines import FunctionLines
from hdrfix.lang.pyfile import PyFile
from hdrfix.lang.sourcefile import SourceFile

TREES = [FRAMEWORK, *sorted(p for p in (FRAMEWORK.parent / "variants").iterdir() if p.is_dir())]


def _python_files(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts]


@pytest.mark.parametrize("root", TREES, ids=lambda p: p.name)
def test_paired_lines_are_the_metadata_lines(root: Path) -> None:
    compared = 0
    for path in _python_files(root):
        source = SourceFile.read(root, path.relative_to(root).as_posix())
        try:
            pyfile = PyFile.parse(source)
        except Exception:  # the variant with a syntax error is not this test's business
            continue
        for ref in pyfile.functions:
            fn = pyfile.cst(ref)
            fast = FunctionLines(ref, fn, pyfile)
            slow = FunctionLines(ref, fn)  # without the file: metadata for every node
            for node in cst_index(pyfile, ref).pairs.values():
                if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                    continue
                assert fast.line(node) == slow.line(node), (path, ref.qualname, fast.line(node))
                compared += 1
    if root == FRAMEWORK:
        assert compared > 300  # the fixture's trainer alone has hundreds of statements
