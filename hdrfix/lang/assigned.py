"""The rule under every edit: inserted code reads only names assigned on every path to it.

The engine runs this on every Python file a run changes, whatever phase changed it, before
anything is written: a statement hdrfix inserted or rewrote must not be able to raise
``UnboundLocalError`` (a local assigned in one ``if`` arm only) or ``NameError`` (a name the
file does not have, such as ``torch`` in a file that never imports it).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from hdrfix.lang.flow import Node, flow_of
from hdrfix.lang.lines import line_opcodes
from hdrfix.lang.names import BUILTINS, header_parts, module_names
from hdrfix.lang.pyfile import parse_tree


@dataclass(frozen=True)
class Violation:
    line: int
    name: str
    why: str  # "unassigned" or "undefined"

    def message(self) -> str:
        if self.why == "undefined":
            return f"an edit would read {self.name!r}, which this file never defines or imports"
        return (
            f"an edit would read {self.name!r}, which is not assigned on every path to it "
            "(UnboundLocalError in the runs that skip its assignment)"
        )


def changed_lines(old: str, new: str) -> tuple[set[int], list[tuple[range, range]]]:
    """Lines of ``new`` that are not lines of ``old`` (1-based), and the (old, new) line ranges
    where lines were rewritten rather than inserted."""
    a, b = old.splitlines(), new.splitlines()
    touched: set[int] = set()
    rewritten: list[tuple[range, range]] = []
    for tag, i1, i2, j1, j2 in line_opcodes(a, b):
        if tag in ("replace", "insert"):
            touched.update(range(j1 + 1, j2 + 1))
        if tag == "replace":
            rewritten.append((range(i1 + 1, i2 + 1), range(j1 + 1, j2 + 1)))
    return touched, rewritten


def violations(old: str, new: str) -> list[Violation]:
    """Inserted statements must read only names assigned on every path to them. A rewritten
    statement may still read what the statement it replaces read unassigned: the edit adds no
    failing path there (a second ``if`` chain over the same condition, say)."""
    touched, rewritten = changed_lines(old, new)
    if not touched:
        return []
    tree = parse_tree(new)
    known = BUILTINS | {"__file__", "__name__", "__class__"} | module_names(tree)
    inherited = _unassigned_reads_in(old, [r for r, _ in rewritten]) if rewritten else {}
    found: list[Violation] = []
    for fn, outer in _functions(tree, touched):
        flow = flow_of(fn)
        free = known | (_all_bound(outer) if outer is not fn else set())
        for node in flow.nodes[1:]:
            span = _span(node)
            if not span & touched:
                continue
            allowed: set[str] = set()
            for old_lines, new_lines in rewritten:
                if span & set(new_lines):
                    allowed |= inherited.get(old_lines.start, set())
            for name in sorted(flow.unassigned_reads(node) - allowed):
                found.append(Violation(node.line, name, "unassigned"))
            for name in sorted(node.reads - flow.locals - free):
                found.append(Violation(node.line, name, "undefined"))
    return sorted(set(found), key=lambda v: (v.line, v.name))


def _functions(tree: ast.AST, lines: set[int]) -> list[tuple[Any, Any]]:
    """(function, the outermost function holding it) for the functions spanning ``lines``,
    nested ones included: a nested function also sees the names of those around it."""
    found: list[tuple[Any, Any]] = []
    stack: list[tuple[ast.AST, Any]] = [(n, None) for n in getattr(tree, "body", [])]
    while stack:
        node, outer = stack.pop()
        if isinstance(node, ast.ClassDef):
            stack.extend((n, outer) for n in node.body)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            end = node.end_lineno or node.lineno
            if any(node.lineno <= line <= end for line in lines):
                found.append((node, outer or node))
                stack.extend((n, outer or node) for n in ast.iter_child_nodes(node))
        elif isinstance(node, ast.stmt):
            stack.extend((n, outer) for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt))
        elif isinstance(node, (ast.ExceptHandler, ast.match_case)):
            stack.extend((n, outer) for n in node.body)
    return found


def _unassigned_reads_in(text: str, ranges: list[range]) -> dict[int, set[str]]:
    """Per rewritten range of the original text (keyed by its first line): the names its
    statements read on some path without an assignment."""
    result: dict[int, set[str]] = {r.start: set() for r in ranges}
    starts = {r.start for r in ranges}
    for fn, _ in _functions(parse_tree(text), starts):
        end = fn.end_lineno or fn.lineno
        mine = [r for r in ranges if fn.lineno <= r.start <= end]
        if not mine:
            continue
        flow = flow_of(fn)
        for node in flow.nodes[1:]:
            span = _span(node)
            for r in mine:
                if span & set(r):
                    result[r.start] |= flow.unassigned_reads(node)
    return result


def _span(node: Node) -> set[int]:
    stmt = node.stmt
    first = getattr(stmt, "lineno", 0)
    if node.header:
        parts = header_parts(stmt)
        last = max((getattr(p, "end_lineno", first) or first for p in parts), default=first)
    else:
        last = getattr(stmt, "end_lineno", first) or first
    return set(range(first, last + 1))


def _all_bound(tree: ast.AST) -> set[str]:
    """Every name bound anywhere in ``tree`` (a function and what it nests)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names
