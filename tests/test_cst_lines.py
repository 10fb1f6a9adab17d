"""libcst questions answered without libcst's own walk, checked against it on every function
of the fixture and its variants (CRLF, one-line ``if``, continuation lines and decorators
included): a statement's line, read from the ``ast`` statement it pairs with, is the line
libcst's position metadata gives, and the field walk finds the nodes libcst's walk finds."""

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


def _first_copies() -> dict[Path, list[Path]]:
    """Per tree, its Python files whose text no earlier tree has: the variants copy the
    fixture's network and helpers, and each text is checked once."""
    seen: set[bytes] = set()
    out: dict[Path, list[Path]] = {}
    for root in TREES:
        out[root] = []
        for path in sorted(root.rglob("*.py")):
            key = path.name.encode() + b"\0" + path.read_bytes()
            if "__pycache__" not in path.parts and key not in seen:
                seen.add(key)
                out[root].append(path)
    return out


FILES = _first_copies()


def _python_files(root: Path) -> list[Path]:
    return FILES[root]


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


KINDS = (
    cst.Name,
    cst.Call,
    cst.Attribute,
    cst.Arg,
    cst.SimpleString,
    cst.BinaryOperation,
    cst.AssignTarget,
    cst.AnnAssign,
    cst.Return,
)


@pytest.mark.parametrize("root", TREES, ids=lambda p: p.name)
def test_the_field_walk_finds_what_libcst_walk_finds(root: Path) -> None:
    """``contains`` skips layout fields (whitespace, comments, brackets) and reads fields
    instead of visiting: on every function, for every kind a phase asks about, it finds the
    same nodes as libcst's own walk, only not in its order."""
    from hdrfix.lang.cst.match import contains, find_all

    for path in _python_files(root):
        source = SourceFile.read(root, path.relative_to(root).as_posix())
        try:
            pyfile = PyFile.parse(source)
        except Exception:
            continue
        for ref in pyfile.functions:
            fn = pyfile.cst(ref)
            walked = find_all(fn, cst.CSTNode)  # libcst's walk, once for every kind
            for kind in KINDS:
                fast = {id(n) for n in contains(fn, kind)}
                slow = {id(n) for n in walked if isinstance(n, kind)}
                assert fast == slow, (path, ref.qualname, kind)


def test_the_index_of_a_text_parsed_again_pairs_the_new_trees_statements():
    """One text can have two ``ast`` trees in a process (its tree parsed again once the cache
    of trees let it go) while its analyses and libcst's parse of a function are shared by text:
    the index made for the first tree must not answer for the second (a KeyError, once, in a
    long test run)."""
    from hdrfix.lang import pyfile as pyfile_module

    text = "class T:\n    def step(self, x):\n        if x:\n            x = 1\n        return x\n"
    source = SourceFile(Path("."), "index_again.py", text.encode(), "utf-8", b"", text)
    first = PyFile.parse(source)
    ref = first.function("T.step")
    first_if = first.node(ref).body[0]
    assert isinstance(cst_index(first, ref).stmt(first_if), cst.If)
    pyfile_module._TREES.pop(text)  # the tree cache lets it go; the analyses stay
    second = PyFile.parse(source)
    assert second.tree is not first.tree and second.analyses is first.analyses
    second_if = second.node(second.function("T.step")).body[0]
    assert isinstance(cst_index(second, ref).stmt(second_if), cst.If)
