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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import libcst as cst

from hdrfix.lang.cst.match import assignments, call_name, string_value, unparen

if TYPE_CHECKING:
    from hdrfix.core.repo import Repo

_HOPS = 32  # names assigned from names: a bound on the walk, not a limit anyone meets


def keys_followed(init: cst.FunctionDef, mapping: cst.BaseExpression) -> tuple[str, ...]:
    """The literal keys ``init`` follows to ``mapping`` (``('data', 'normalization')``), from
    the first name it cannot follow further (a parameter); () where a key is not a literal."""
    assigned: dict[str, list[cst.BaseExpression]] = {}
    for a in assignments(init.body):
        assigned.setdefault(a.target, []).append(a.value)
    keys: list[str] = []
    node: cst.BaseExpression = mapping
    for _ in range(_HOPS):
        node = unparen(node)
        if isinstance(node, cst.BooleanOperation) and isinstance(node.operator, cst.Or):
            node = node.left  # ``x or {}``
        elif call_name(node) == "get" and isinstance(node, cst.Call) and node.args:
            key = string_value(node.args[0].value)
            if key is None or not isinstance(node.func, cst.Attribute):
                return ()
            keys.append(key)
            node = node.func.value
        elif isinstance(node, cst.Subscript) and len(node.slice) == 1:
            index = node.slice[0].slice
            key = string_value(index.value) if isinstance(index, cst.Index) else None
            if key is None:
                return ()
            keys.append(key)
            node = node.value
        elif isinstance(node, cst.Name) and len(assigned.get(node.value, [])) == 1:
            node = assigned[node.value][0]
        else:
            break
    return tuple(reversed(keys))


def section_notes(repo: Repo, options: Mapping[str, Any], configs: list[str]) -> list[str]:
    """A note per config whose sections all disagree with where the trainer reads them."""
    from hdrfix.kit.targets import framework_file, sections_of
    from hdrfix.kit.trainersetting import find_settings
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
        init = pyfile.cst(ref)
        settings = find_settings(init)
        keys = keys_followed(init, settings.mapping) if settings else ()
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
