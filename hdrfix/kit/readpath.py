"""Whether the config section hdrfix edits is one the trainer reads.

Configs are found by the keys they hold (``targets.sections_of``); the trainer's ``__init__``
says where it looks: ``norm = (config.get('data', {}) or {}).get('normalization', {}) or {}``
follows ``data`` then ``normalization`` from a parameter. What that parameter is (the whole
config, or its ``data`` part) the code does not say, so a section agrees with the trainer when
its path ends with the keys followed: ``data.normalization`` agrees with both ``['data']
['normalization']`` and ``['normalization']``; a top-level ``normalization`` does not agree
with ``['data']['normalization']``, and edits there may never reach the trainer.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hdrfix.kit.settingreads import settings_mapping
from hdrfix.lang.astmatch import call_name
from hdrfix.lang.stmtlines import placed_statements

if TYPE_CHECKING:
    from hdrfix.core.repo import Repo
    from hdrfix.lang.pyfile import PyFile

_HOPS = 32  # names assigned from names: a bound on the walk, not a limit anyone meets


def keys_followed(
    pyfile: PyFile, init: ast.FunctionDef | ast.AsyncFunctionDef, mapping: ast.expr
) -> tuple[str, ...]:
    """The literal keys ``init`` follows to ``mapping`` (``('data', 'normalization')``), from
    the first name it cannot follow further (a parameter); () where a key is not a literal."""
    assigned: dict[str, list[ast.expr]] = {}
    for placed in placed_statements(pyfile, init):
        stmt = placed.stmt
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):
                assigned.setdefault(target.id, []).append(stmt.value)
    keys: list[str] = []
    node: ast.expr = mapping
    for _ in range(_HOPS):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            node = node.values[0]  # ``x or {}``
        elif call_name(node) == "get" and isinstance(node, ast.Call) and node.args + node.keywords:
            # a key given by keyword is read as given by position
            first = node.args[0] if node.args else node.keywords[0].value
            key = _string(first)
            if key is None or not isinstance(node.func, ast.Attribute):
                return ()
            keys.append(key)
            node = node.func.value
        elif isinstance(node, ast.Subscript):
            key = _string(node.slice)
            if key is None:
                return ()
            keys.append(key)
            node = node.value
        elif isinstance(node, ast.Name) and len(assigned.get(node.id, [])) == 1:
            node = assigned[node.id][0]
        else:
            break
    return tuple(reversed(keys))


def _string(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def section_notes(repo: Repo, options: Mapping[str, Any], configs: list[str]) -> list[str]:
    """A note per config whose sections all disagree with where the trainer reads them."""
    from hdrfix.kit.targets import framework_file, sections_of
    from hdrfix.lang.errors import HdrfixError

    try:
        framework = framework_file(repo, options)
        pyfile = repo.python(framework)
    except HdrfixError:
        return []  # the phase reports a missing or broken framework in its own terms
    notes = []
    for ref in pyfile.functions:
        if ref.name != "__init__" or ref.class_name is None:
            continue
        init = pyfile.node(ref)
        mapping = settings_mapping(pyfile, init)
        keys = keys_followed(pyfile, init, mapping) if mapping is not None else ()
        if not keys:
            continue
        shown = "".join(f"[{k!r}]" for k in keys)
        for rel in configs:
            paths = sections_of(repo.text(rel), rel)
            if paths and not any(tuple(p.split("."))[-len(keys) :] == keys for p in paths):
                notes.append(
                    f"{rel}: hdrfix edits {', '.join(paths)}, but {ref.class_name}.__init__ "
                    f"({framework}:{ref.line}) reads its settings from ...{shown}: the new "
                    "values may not reach the trainer; check which section it is given"
                )
    return notes
