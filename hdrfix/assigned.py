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


def changed_lines(old: str, new: str) -> set[int]:
    """1-based numbers of the lines of ``new`` that are not lines of ``old``."""
    a, b = old.splitlines(), new.splitlines()
    touched: set[int] = set()
    for tag, _, _, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "insert"):
            touched.update(range(j1 + 1, j2 + 1))
    return touched


def violations(old: str, new: str) -> list[Violation]:
    touched = changed_lines(old, new)
    if not touched:
        return []
    tree = ast.parse(new)
    known = BUILTINS | {"__file__", "__name__", "__class__"} | _all_bound(tree)
    found: list[Violation] = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        end = fn.end_lineno or fn.lineno
        if not any(fn.lineno <= line <= end for line in touched):
            continue
        flow = Flow(fn)
        for node in flow.nodes[1:]:
            if not _span(node) & touched:
                continue
            for name in sorted(flow.unassigned_reads(node)):
                found.append(Violation(node.line, name, "unassigned"))
            for name in sorted(node.reads - flow.locals - known):
                found.append(Violation(node.line, name, "undefined"))
    return sorted(set(found), key=lambda v: (v.line, v.name))


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
