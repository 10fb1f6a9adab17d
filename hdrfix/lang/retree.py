"""The ``ast`` tree of a file whose functions were edited, parsed from the first edit on.

An edit replaces whole functions, so everything before the first edited function is the same
text at the same lines: its nodes are the old tree's own, and only the rest is parsed, with
blank lines before it so that every line number is the file's. On a 3,000-line trainer whose
sites sit near the end that is a few hundred lines instead of all of them, for each of a run's
text versions; the nodes kept are the very objects the last analysis saw, so the flow graphs of
unedited functions are reused too (:func:`hdrfix.lang.flow.flow_of` keys them by node).

Why by hand: no parser offers incremental reparsing of Python to ``ast`` (libcst's parse is
whole-module, and slower). The result must equal ``ast.parse`` of the whole text, positions
included. Where that is not certain this returns None and the caller parses the whole text:
a future import that changes the grammar; a tail that does not parse alone; a tail that does
not begin at its ``@`` or ``def`` (a decorator's expression written on the line after its
``@``); a method whose first line is indented unlike the class body before it (alone it would
set the indent, in the file it nests or fails); a lone ``\\r`` before a tail that begins with
``\\n`` (one line break in the file, two alone). The engine's check that an edited file still
parses reads the tree made here, so each of these is a test. With ``HDRFIX_CHECK_RETREE`` set
(the test suite sets it) every tree made here is compared with a whole parse, ``ast.dump``
with positions, and a difference is an error.
"""

from __future__ import annotations

import ast
import copy
import os
import re

_Def = (ast.FunctionDef, ast.AsyncFunctionDef)
# what a function's first line holds: a decorator, or its ``def``
_STATEMENT_START = re.compile(r"[ \t\f]*(@|def\b|async\b)")
_LEADING = re.compile(r"[ \t\f]*")
_BREAK = re.compile(r"\r\n|\r|\n")


def retree(
    old: ast.Module,
    text: str,
    start: int,
    line: int,
    class_name: str | None,
) -> ast.Module | None:
    """The tree of ``text``, which equals the text ``old`` was parsed from before character
    ``start``, where the first edited function begins (on ``line``, a method of top-level
    class ``class_name`` or a top-level function)."""
    if "barry_as_FLUFL" in text:
        return None  # the one future import that changes what parses
    tail = text[start:]
    if not _STATEMENT_START.match(tail) or (start and text[start - 1] == "\r" and tail[:1] == "\n"):
        # a decorator's expression on the line after its ``@`` (the tail would begin inside
        # it), or a ``\r`` before the tail that its ``\n`` would join into one line break
        return None
    try:
        if class_name is None:
            tree = _function_tail(old, tail, line)
        else:
            tree = _method_tail(old, text, start, line, class_name)
    except SyntaxError:
        return None  # the whole parse reports it, with its own line
    if tree is not None and os.environ.get("HDRFIX_CHECK_RETREE"):
        whole = ast.parse(text)
        if ast.dump(tree, include_attributes=True) != ast.dump(whole, include_attributes=True):
            raise AssertionError(f"retree differs from ast.parse after line {line}")
    return tree


def _indent(text: str, line: int) -> str:
    """The blanks that begin line ``line`` of ``text``, lines counted as ``ast`` counts them
    (``\\r\\n``, ``\\r`` or ``\\n`` ends one; ``str.splitlines`` knows more)."""
    at = 0
    for _ in range(line - 1):
        found = _BREAK.search(text, at)
        if found is None:
            return ""
        at = found.end()
    blanks = _LEADING.match(text, at)
    return blanks.group() if blanks else ""


def _index(body: list[ast.stmt], line: int, kinds: tuple[type, ...]) -> int | None:
    """The position of the statement of ``kinds`` whose first line (decorators included)
    is ``line``."""
    for i, node in enumerate(body):
        if isinstance(node, kinds) and _first_line(node) == line:
            return i
    return None


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _function_tail(old: ast.Module, tail: str, line: int) -> ast.Module | None:
    at = _index(old.body, line, _Def)
    if at is None:
        return None
    parsed = ast.parse("\n" * (line - 1) + tail)
    return ast.Module(body=old.body[:at] + parsed.body, type_ignores=[])


def _method_tail(
    old: ast.Module, text: str, start: int, line: int, class_name: str
) -> ast.Module | None:
    """The class is copied with its methods before the edit kept; the rest of its body and of
    the module is parsed under a stand-in ``class`` line just above the tail.

    The stand-in lets the tail's first line set the class body's indent; in the file that
    indent is set by the class's first statement. So where that statement comes before the
    tail, the tail's first line must be indented with the very same characters (another
    indent would nest the method, or be an error, in the file)."""
    tail = text[start:]
    at_class = next(
        (
            i
            for i, node in enumerate(old.body)
            if isinstance(node, ast.ClassDef)
            and node.name == class_name
            and _first_line(node) < line <= (node.end_lineno or 0)
        ),
        None,
    )
    if at_class is None or line < 2:
        return None
    cls = old.body[at_class]
    assert isinstance(cls, ast.ClassDef)
    at = _index(cls.body, line, _Def)
    if at is None:
        return None
    if at > 0 and _indent(text, cls.body[0].lineno) != _indent(tail, 1):
        return None
    parsed = ast.parse("\n" * (line - 2) + "class _:\n" + tail)
    stand_in = parsed.body[0]
    if not isinstance(stand_in, ast.ClassDef):
        return None
    new_cls = copy.copy(cls)  # shallow: its header's nodes are the old ones, as its lines are
    new_cls.body = cls.body[:at] + stand_in.body
    new_cls.end_lineno = stand_in.end_lineno
    new_cls.end_col_offset = stand_in.end_col_offset
    return ast.Module(body=[*old.body[:at_class], new_cls, *parsed.body[1:]], type_ignores=[])
