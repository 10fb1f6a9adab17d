"""The tree of an edited file built from its first edited function on (hdrfix.lang.retree)
equals ``ast.parse`` of the whole text, positions included, and keeps the nodes before it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import fixture_sources
from hypothesis import given, settings
from hypothesis import strategies as st

from hdrfix.lang.pyfile import PyFile
from hdrfix.lang.retree import retree
from hdrfix.lang.sourcefile import SourceFile

ROOT = Path(__file__).resolve().parent.parent


def _pyfile(text: str) -> PyFile:
    return PyFile.parse(SourceFile(Path("."), "t.py", text.encode(), "utf-8", b"", text))


def _dump(tree: ast.AST) -> str:
    return ast.dump(tree, include_attributes=True)


def _edited(pyfile: PyFile, qualname: str, line: str) -> tuple[str, object]:
    """The file with ``line`` added as the first statement of ``qualname``'s body."""
    ref = pyfile.function(qualname)
    node = pyfile.node(ref)
    first = node.body[0]
    at = pyfile.starts[first.lineno - 1]
    indent = pyfile.source.text[at : at + first.col_offset]
    segment = pyfile.segment(ref)
    cut = at - ref.start
    new = segment[:cut] + f"{indent}{line}\n" + segment[cut:]
    text = pyfile.source.text
    return text[: ref.start] + new + text[ref.end :], ref


def _distinct_functions() -> list[tuple[Path, list[str]]]:
    """Each fixture file with its functions not written the same in a file before it (the
    variants copy the framework's trainer, changing a few functions each)."""
    seen: set[tuple[str | None, str]] = set()
    cases = []
    for path in fixture_sources("def "):
        pyfile = _pyfile(path.read_text(encoding="utf-8"))
        new = []
        for ref in pyfile.functions:
            key = (ref.class_name, pyfile.segment(ref))
            if key not in seen:
                seen.add(key)
                new.append(ref.qualname)
        if new:
            cases.append((path, new))
    return cases


@pytest.mark.parametrize(
    ("path", "qualnames"),
    _distinct_functions(),
    ids=lambda c: str(c.relative_to(ROOT / "fixtures")) if isinstance(c, Path) else "",
)
def test_every_function_of_every_fixture_retrees_as_a_whole_parse(path, qualnames, monkeypatch):
    monkeypatch.delenv("HDRFIX_CHECK_RETREE", raising=False)  # compared here, not inside
    pyfile = _pyfile(path.read_text(encoding="utf-8"))
    for ref in pyfile.functions:
        if ref.qualname not in qualnames:
            continue
        if pyfile.node(ref).body[0].lineno == pyfile.node(ref).lineno:
            continue  # a body on the def line: no first line to add before
        text, _ = _edited(pyfile, ref.qualname, "pass  # added")
        tree = retree(pyfile.tree, text, ref.start, ref.line, ref.class_name)
        assert tree is not None, ref.qualname
        assert _dump(tree) == _dump(ast.parse(text)), ref.qualname


SOURCE = '''import torch


def helper(x):
    return x


class Trainer:
    """Trains."""

    scale = 2

    @staticmethod
    def first(x):
        return x

    def step(self, x):
        y = x + 1
        return y

    def last(self):
        return (
            1
        )


def main():
    Trainer().step(1)


if __name__ == "__main__":
    main()
'''


def test_the_nodes_before_the_edit_are_the_old_trees_own():
    pyfile = _pyfile(SOURCE)
    text, ref = _edited(pyfile, "Trainer.step", "x = x * 2")
    tree = retree(pyfile.tree, text, ref.start, ref.line, ref.class_name)
    assert tree is not None
    assert tree.body[0] is pyfile.tree.body[0]  # the import
    cls, old_cls = tree.body[2], pyfile.tree.body[2]
    assert cls is not old_cls and cls.body[:3] == old_cls.body[:3]  # docstring, scale, first
    assert all(a is b for a, b in zip(cls.body[:3], old_cls.body[:3]))
    assert cls.end_lineno == old_cls.end_lineno + 1
    assert _dump(tree) == _dump(ast.parse(text))


def test_a_top_level_function_keeps_what_comes_before_it():
    pyfile = _pyfile(SOURCE)
    text, ref = _edited(pyfile, "main", "print('start')")
    tree = retree(pyfile.tree, text, ref.start, ref.line, ref.class_name)
    assert tree is not None and tree.body[2] is pyfile.tree.body[2]
    assert _dump(tree) == _dump(ast.parse(text))


def test_reparsed_files_share_the_unedited_functions_nodes():
    pyfile = _pyfile(SOURCE)
    step = pyfile.segment(pyfile.function("Trainer.step"))
    edited = pyfile.reparsed({"Trainer.step": step.replace("y = x + 1", "y = x\n        y += 1")})
    first = pyfile.function("Trainer.first")
    assert edited.node(edited.function("Trainer.first")) is pyfile.node(first)
    assert edited.node(edited.function("Trainer.last")) is not pyfile.node(
        pyfile.function("Trainer.last")
    )
    assert edited.function("Trainer.last").line == pyfile.function("Trainer.last").line + 1


def test_a_grammar_changing_future_import_parses_whole():
    text = "from __future__ import barry_as_FLUFL\n" + SOURCE
    pyfile = _pyfile(text)
    new, ref = _edited(pyfile, "Trainer.step", "x = 1")
    assert retree(pyfile.tree, new, ref.start, ref.line, ref.class_name) is None


def test_a_tail_that_does_not_parse_is_left_to_the_whole_parse():
    pyfile = _pyfile(SOURCE)
    ref = pyfile.function("Trainer.step")
    broken = SOURCE[: ref.start] + "    def step(self x):\n        pass\n" + SOURCE[ref.end :]
    assert retree(pyfile.tree, broken, ref.start, ref.line, ref.class_name) is None


_LINES = st.sampled_from(
    ["x = 1", "if x:\n            y = 2", "# a comment", "pass  # c", "for i in x:\n"
     "            pass\n        else:\n            pass", "return (\n            1)",
     "s = '''\nmulti\n'''", "z = [\n    1,\n]", "async_ = 3", "u = 'é' + 'ü'"]
)  # fmt: skip


@settings(max_examples=120, deadline=None)
@given(
    qualname=st.sampled_from(["helper", "Trainer.first", "Trainer.step", "Trainer.last", "main"]),
    line=_LINES,
    crlf=st.booleans(),
)
def test_any_added_statement_retrees_as_a_whole_parse(qualname, line, crlf):
    source = SOURCE.replace("\n", "\r\n") if crlf else SOURCE
    pyfile = _pyfile(source)
    text, ref = _edited(pyfile, qualname, line)
    try:
        whole = ast.parse(text)
    except SyntaxError:
        assert retree(pyfile.tree, text, ref.start, ref.line, ref.class_name) is None
        return
    tree = retree(pyfile.tree, text, ref.start, ref.line, ref.class_name)
    assert tree is not None
    assert _dump(tree) == _dump(whole)


@pytest.mark.parametrize(
    ("old", "new", "line", "class_name"),
    [
        # a decorator's expression on the line after its ``@``: the tail would begin inside it
        ("@\\\ndeco\ndef f():\n    return 1\n", "@\\\ndeco\ndef f():\n    return 2\n", 2, None),
        (
            "@(\ndeco)\ndef f():\n    return 1\n",
            "@(\nx = (deco)\ndef f():\n    return 1\n",
            2,
            None,
        ),
        (
            "class A:\n    @\\\n    deco\n    def f(self):\n        return 1\n",
            "class A:\n    @\\\n    deco\n    def f(self):\n        return 2\n",
            3,
            "A",
        ),
        # a method indented unlike the class body it follows: an error, or nested, in the file
        (
            "class A:\n    x = 1\n    def f(self):\n        return 1\n",
            "class A:\n    x = 1\n  def f(self):\n    return 1\n",
            3,
            "A",
        ),
        (
            "class A:\n    x = 1\n    def f(self):\n        return 1\n",
            "class A:\n    x = 1\n\tdef f(self):\n\t\treturn 1\n",
            3,
            "A",
        ),
        (
            "class A:\n    def g(self):\n        pass\n    def f(self):\n        return 1\n",
            "class A:\n    def g(self):\n        pass\n"
            "        def f(self):\n            return 1\n",
            4,
            "A",
        ),
        # a lone CR before the tail and a LF that begins it: one line break in the file
        ("x = 1\rdef f():\n    return 1\n", "x = 1\r\ndef f():\n    return 1\n", 2, None),
    ],
)
def test_tails_that_read_otherwise_in_the_file_are_parsed_whole(old, new, line, class_name):
    from hdrfix.lang.lines import line_starts

    start = line_starts(old)[line - 1]
    assert old[:start] == new[:start]
    assert retree(ast.parse(old), new, start, line, class_name) is None


def test_a_reindented_method_is_not_taken_for_a_file_that_parses(monkeypatch):
    monkeypatch.delenv("HDRFIX_CHECK_RETREE", raising=False)  # (its whole parse would raise)
    pyfile = _pyfile("class A:\n    x = 1\n\n    def f(self):\n        return 1\n")
    with pytest.raises(Exception, match="indent"):
        pyfile.reparsed({"A.f": "  def f(self):\n    return 2\n"})
