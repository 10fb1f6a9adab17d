"""A forward that hands out a list of residuals (one per pyramid level): bounded per element.

``torch.tanh(levels) * scale`` over a Python list raises TypeError in every mode, so the bound
becomes ``levels = [torch.tanh(level) * self.residual_output_scale for level in levels]`` once
the list is complete (after the loop that appends to it), and a returned list display
``[a, b]`` gets the bound on each element.
"""

from __future__ import annotations

import libcst as cst

from hdrfix.lang.cst.match import find_all, loaded_names, name_of, small_statements, sub_suites
from hdrfix.lang.names import MUTATORS


def builds_list(value: cst.BaseExpression) -> bool:
    """``[]``, ``[a, b]``, ``[f(x) for x in xs]`` or ``list(...)``."""
    if isinstance(value, (cst.List, cst.ListComp)):
        return True
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Name)
        and value.func.value == "list"
    )


def fills(stmt: cst.CSTNode, name: str) -> bool:
    """Whether ``stmt`` only adds to the list ``name`` (``name.append(x)``, in a loop or not):
    every read of ``name`` in it is the receiver of such a call."""
    smalls = _smalls(stmt)
    receivers = [s for s in smalls if _mutates(s, name)]
    reads = [n for n in find_all(stmt, cst.Name) if isinstance(n, cst.Name) and n.value == name]
    return bool(receivers) and len(reads) == len(receivers)


def bound_statement(name: str, torch: str, scale_attr: str) -> cst.BaseStatement:
    element = "level" if "level" not in (name, torch) else f"{name}_level"
    return cst.parse_statement(
        f"{name} = [{torch}.tanh({element}) * self.{scale_attr} for {element} in {name}]"
    )


def elements(node: cst.CSTNode) -> list[cst.BaseExpression] | None:
    """The elements of a returned list display, or None when it is not one."""
    if not isinstance(node, cst.List):
        return None
    if any(isinstance(e, cst.StarredElement) for e in node.elements):
        return None
    return [e.value for e in node.elements]


def _mutates(small: cst.CSTNode, name: str) -> bool:
    call = small.value if isinstance(small, cst.Expr) else None
    return (
        isinstance(call, cst.Call)
        and isinstance(call.func, cst.Attribute)
        and name_of(call.func.value) == name
        and call.func.attr.value in MUTATORS
        and not any(name in loaded_names(a.value) for a in call.args)
    )


def _smalls(stmt: cst.CSTNode) -> list[cst.CSTNode]:
    if isinstance(stmt, cst.SimpleStatementLine):
        return list(stmt.body)
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return []
    return [s for suite in sub_suites(stmt) for s, _ in small_statements(suite)]
