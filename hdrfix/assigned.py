"""The rule under every edit: inserted code reads only names assigned on every path to it.

The engine runs this on every Python file a run changes, whatever phase changed it, before
anything is written: a statement hdrfix inserted or rewrote must not be able to raise
``UnboundLocalError`` (a local assigned in one ``if`` arm only) or ``NameError`` (a name the
file does not have, such as ``torch`` in a file that never imports it).
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass

from hdrfix.flow import BUILTINS, Flow, Node, header_parts, stores


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
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
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
    tree = ast.parse(new)
    known = BUILTINS | {"__file__", "__name__", "__class__"} | _all_bound(tree)
    inherited = _unassigned_reads_in(old, [r for r, _ in rewritten]) if rewritten else {}
    found: list[Violation] = []
    for fn in _functions(tree):
        end = fn.end_lineno or fn.lineno
        if not any(fn.lineno <= line <= end for line in touched):
            continue
        flow = Flow(fn)
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
            for name in sorted(node.reads - flow.locals - known):
                found.append(Violation(node.line, name, "undefined"))
    return sorted(set(found), key=lambda v: (v.line, v.name))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _unassigned_reads_in(text: str, ranges: list[range]) -> dict[int, set[str]]:
    """Per rewritten range of the original text (keyed by its first line): the names its
    statements read on some path without an assignment."""
    result: dict[int, set[str]] = {r.start: set() for r in ranges}
    for fn in _functions(ast.parse(text)):
        end = fn.end_lineno or fn.lineno
        mine = [r for r in ranges if fn.lineno <= r.start <= end]
        if not mine:
            continue
        flow = Flow(fn)
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


def _all_bound(tree: ast.Module) -> set[str]:
    """Every name bound anywhere in the file: module level, and enclosing functions for
    closures (a nested function's free names)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            names |= stores(node)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names
