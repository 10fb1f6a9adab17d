"""A Python file indexed with the standard library's ``ast`` and edited one function at a time.

Parsing a whole 3,000-line framework with libcst costs more than the rest of a run, and the phases
only ever edit a handful of functions. So the file is parsed once with ``ast`` (fast, exact line
numbers), and only the functions a phase asks for are parsed with libcst, once each. Edited
functions are spliced back over their original span; every other byte is the original text, which
is what a whole-file libcst round trip would have produced too.
"""

from __future__ import annotations

import ast
import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.lines import line_starts, newline_of
from hdrfix.lang.sourcefile import SourceFile

if TYPE_CHECKING:
    import libcst
    import libcst as cst


@dataclass(frozen=True)
class FunctionRef:
    """A function or method: ``qualname`` is ``Class.method`` or ``function``."""

    qualname: str
    name: str
    class_name: str | None
    line: int  # of the ``def`` (or first decorator)
    end_line: int
    start: int  # character offsets of the whole lines it spans
    end: int
    indent: str


@dataclass
class PyFile:
    source: SourceFile
    tree: ast.Module
    functions: list[FunctionRef]
    classes: dict[str, ast.ClassDef]
    starts: list[int]  # of each line of the text: ``starts[n - 1]`` is line n
    _cst: dict[str, tuple[str, cst.Module, cst.FunctionDef]] = field(default_factory=dict)
    _edited: dict[str, cst.FunctionDef | str] = field(default_factory=dict)
    _rendered: dict[str, tuple[cst.FunctionDef, str]] = field(default_factory=dict)
    # Analyses of a function (e.g. its log-domain sites), valid while its node is the same object.
    analyses: dict[tuple[str, str], tuple[object, object]] = field(default_factory=dict)

    @classmethod
    def parse(cls, source: SourceFile, tree: ast.Module | None = None) -> PyFile:
        """The file indexed; ``tree``: its ``ast``, where the caller has it already."""
        text = source.text
        try:
            tree = tree or parse_tree(text, source.rel)
        except SyntaxError as exc:
            raise HdrfixError(
                f"Python syntax error: {exc.msg}",
                source.rel,
                exc.lineno,
                "fix the syntax error, then run hdrfix again",
            ) from None
        starts = line_starts(text)
        # A name defined twice is the last definition at run time: only that one is indexed,
        # so an edit can never land in (or be copied into) a shadowed body.
        by_name: dict[str, ast.stmt] = {}
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                by_name.pop(node.name, None)
                by_name[node.name] = node
        functions: list[FunctionRef] = []
        classes: dict[str, ast.ClassDef] = {}
        for node in sorted(by_name.values(), key=lambda n: n.lineno):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = node
                methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        methods.pop(item.name, None)
                        methods[item.name] = item
                for item in sorted(methods.values(), key=lambda n: n.lineno):
                    functions.append(_ref(item, node.name, text, starts))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append(_ref(node, None, text, starts))
        return cls(source, tree, functions, classes, starts, analyses=_analyses_of(source, text))

    def node(self, ref: FunctionRef) -> ast.FunctionDef | ast.AsyncFunctionDef:
        """The ``ast`` node of a function, as the file stands now."""
        owner: list[ast.stmt] = self.tree.body
        if ref.class_name is not None:
            owner = self.classes[ref.class_name].body
        for node in owner:
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name == ref.name
                and node.lineno <= ref.end_line
                and (node.end_lineno or node.lineno) >= ref.line
            ):
                return node
        raise LookupError(ref.qualname)

    @property
    def rel(self) -> str:
        return self.source.rel

    def function(self, qualname: str) -> FunctionRef | None:
        return next((f for f in self.functions if f.qualname == qualname), None)

    def segment(self, ref: FunctionRef) -> str:
        return self.source.text[ref.start : ref.end]

    def cst(self, ref: FunctionRef) -> cst.FunctionDef:
        """The function as libcst sees it now: edited by an earlier phase, or parsed once."""
        edited = self._edited.get(ref.qualname)
        if isinstance(edited, str):
            return self._parsed(ref, edited)[1]
        if edited is not None:
            return edited
        return self._parsed(ref, self.segment(ref))[1]

    def _parsed(self, ref: FunctionRef, segment: str) -> tuple[libcst.Module, libcst.FunctionDef]:
        """libcst's module and function for one text of a function, kept while it is current."""
        cached = self._cst.get(ref.qualname)
        if cached is None or cached[0] != segment:
            newline = newline_of(self.source.text)
            text = segment
            if _cr_only(text):
                text, newline = text.replace("\r", "\n"), "\n"
            cached = (segment, *_parse_function(text, ref, self.rel, newline))
            self._cst[ref.qualname] = cached
        return cached[1], cached[2]

    def replace(self, ref: FunctionRef, node: libcst.FunctionDef | str) -> None:
        """Edit a function: a libcst node, or its new text (whole lines, as the span it
        replaces: :mod:`hdrfix.lang.splice`)."""
        self._edited[ref.qualname] = node

    def is_edited(self, ref: FunctionRef) -> bool:
        return ref.qualname in self._edited

    def reparsed(self, edits: dict[str, libcst.FunctionDef | str]) -> PyFile:
        """The file as it would read with ``edits`` (qualname -> function) on top of this
        run's, indexed anew; this file is left as it is."""
        import dataclasses

        saved = dict(self._edited)
        try:
            self._edited.update(edits)
            text = self.text()
            first = min(
                (r for r in self.functions if r.qualname in self._edited),
                key=lambda r: r.start,
                default=None,
            )
        finally:
            self._edited = saved
        tree = _TREES.get(text)
        if tree is None and first is not None:
            from hdrfix.lang.retree import retree

            tree = retree(self.tree, text, first.start, first.line, first.class_name)
            if tree is not None:
                _remember(text, tree)
        return PyFile.parse(dataclasses.replace(self.source, text=text), tree)

    @property
    def edited(self) -> bool:
        return bool(self._edited)

    def text(self) -> str:
        """The file with every edited function spliced back over its original span."""
        if not self._edited:
            return self.source.text
        parts: list[str] = []
        pos = 0
        for ref in self.functions:
            node = self._edited.get(ref.qualname)
            if node is None:
                continue
            parts.append(self.source.text[pos : ref.start])
            parts.append(node if isinstance(node, str) else self._render(ref, node))
            pos = ref.end
        parts.append(self.source.text[pos:])
        return "".join(parts)

    def _render(self, ref: FunctionRef, node: libcst.FunctionDef) -> str:
        cached = self._rendered.get(ref.qualname)
        if cached is None or cached[0] is not node:
            # the module of whichever text was parsed last: its indent and newline are the
            # function's own either way
            code = _render_function(self._cst[ref.qualname][1], node)
            if _cr_only(self.segment(ref)):
                code = code.replace("\n", "\r")
            cached = (node, code)
            self._rendered[ref.qualname] = cached
        return cached[1]


def parse_tree(text: str, rel: str = "<unknown>") -> ast.Module:
    """``ast.parse``, once per text: a run parses each version of a file in several places
    (indexing, the check of each phase's edits, the engine's checks), and trees are only read.

    Keyed by the text alone: the name only labels a syntax error, and every caller reports
    that under its own file name (a 3,000-line trainer costs 30-70 ms a parse here)."""
    tree = _TREES.get(text)
    if tree is not None:
        _TREES.move_to_end(text)
        return tree
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        exc.filename = rel
        raise
    _remember(text, tree)
    return tree


#: The trees of the last texts parsed (or built by :mod:`hdrfix.lang.retree`), newest last.
_TREES: OrderedDict[str, ast.Module] = OrderedDict()


def _remember(text: str, tree: ast.Module) -> None:
    _TREES[text] = tree
    while len(_TREES) > 32:
        _TREES.popitem(last=False)


def _analyses_of(source: SourceFile, text: str) -> dict[tuple[str, str], tuple[object, object]]:
    """The analyses made of this very text of this file in this process, shared by every index
    of it: a phase's check of its edits analyses the file as it will read, and the next phase
    indexes that same text again (each entry is still checked against the tree it was made of).
    An entry is made of the text alone (the file's ``ast``, its sites, its libcst index), so
    another checkout holding the same file shares it too."""
    return _shared(source.rel, text)


@functools.lru_cache(maxsize=32)
def _shared(rel: str, text: str) -> dict[tuple[str, str], tuple[object, object]]:
    return {}


def _ref(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    class_name: str | None,
    text: str,
    starts: list[int],
) -> FunctionRef:
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    last = node.end_lineno or node.lineno
    start = starts[first - 1]
    end = starts[last] if last < len(starts) else len(text)
    line_text = text[start : starts[first] if first < len(starts) else len(text)]
    indent = line_text[: len(line_text) - len(line_text.lstrip(" \t"))]
    qualname = f"{class_name}.{node.name}" if class_name else node.name
    return FunctionRef(qualname, node.name, class_name, first, last, start, end, indent)


def _cr_only(segment: str) -> bool:
    """Lines ended by ``\r`` alone (old Mac style): CPython reads them, libcst does not keep
    them, so libcst gets the function with ``\n`` and its rendering gets ``\r`` back. Only
    where no ``\n`` is there at all: then the round trip is exact, byte for byte."""
    return "\r" in segment and "\n" not in segment


# An indented method cannot be parsed on its own; under a header line it is an ordinary block.
_WRAPPER = "if True:"


def _parse_function(
    segment: str, ref: FunctionRef, rel: str, newline: str
) -> tuple[cst.Module, cst.FunctionDef]:
    """Parse one function; the module is kept so that rendering reuses its indent and newline."""
    import libcst as cst

    if not segment.endswith(("\n", "\r")):
        segment += newline
    source = f"{_WRAPPER}{newline}{segment}" if ref.indent else segment
    try:
        module = _cst_parsed(source)
    except cst.ParserSyntaxError as exc:
        raise HdrfixError(
            f"libcst cannot parse {ref.qualname}: {exc.message}",
            rel,
            ref.line + exc.raw_line - (2 if ref.indent else 1),
            "report this file's shape to hdrfix",
        ) from None
    return module, _function_of(module)


@functools.lru_cache(maxsize=64)
def _cst_parsed(source: str) -> cst.Module:
    """libcst's parse of one function's text, once per text in a process: each phase of a run
    indexes the file anew, and its check re-reads the functions it did not edit. libcst
    trees are immutable, so sharing one between indexes is safe (an edit builds new nodes)."""
    import libcst as cst

    return cst.parse_module(source)


def _function_of(module: cst.Module) -> cst.FunctionDef:
    import libcst as cst

    stmt = module.body[0]
    inner = stmt.body.body[0] if isinstance(stmt, cst.If) else stmt
    assert isinstance(inner, cst.FunctionDef)
    return inner


def _render_function(module: cst.Module, node: cst.FunctionDef) -> str:
    import libcst as cst

    stmt = module.body[0]
    if isinstance(stmt, cst.If):
        assert isinstance(stmt.body, cst.IndentedBlock)
        wrapped = stmt.with_changes(body=stmt.body.with_changes(body=[node]))
        code = module.with_changes(body=[wrapped]).code
        newline = module.default_newline
        return code[code.index(newline) + len(newline) :]
    return module.with_changes(body=[node]).code
