"""``PatchNetwork.__init__``: whether it has the learnable scale, and where phase2 registers it.

The parameter goes after the last statement before the first one that can ``return`` (a network
built through an early return would lack it: AttributeError in ``forward``), and never before
the module's own ``__init__`` ran (``nn.Module`` refuses parameters before it).
"""

from __future__ import annotations

import libcst as cst

from hdrfix.lang.cst.edit import FunctionEdit
from hdrfix.lang.cst.match import (
    attr_of_self,
    call_name,
    code_of,
    contains,
    small_statements,
    sub_suites,
)
from hdrfix_plugins.phase2.scale import PARAM as SCALE_ATTR


class Unrecognised(Exception):
    """forward hands out something that is not recognisably the residual; ``node`` says where."""

    def __init__(self, node: cst.CSTNode, why: str) -> None:
        super().__init__(why)
        self.node = node
        self.why = why


def has_scale_parameter(init: cst.FunctionDef) -> bool:
    """``self.residual_output_scale = …`` or ``register_parameter("residual_output_scale", …)``."""
    for node in contains(init, cst.AssignTarget):
        if attr_of_self(node.target) == SCALE_ATTR:  # type: ignore[attr-defined]
            return True
    for node in contains(init, cst.AnnAssign):
        if attr_of_self(node.target) == SCALE_ATTR:  # type: ignore[attr-defined]
            return True
    return any(
        call_name(c) == "register_parameter"
        and c.args  # type: ignore[attr-defined]
        and SCALE_ATTR in code_of(c.args[0].value)  # type: ignore[attr-defined]
        for c in contains(init, cst.Call)
    )


def add_scale_parameter(init: cst.FunctionDef, torch: str, nn: str, value: float) -> FunctionEdit:
    """The parameter, as the last statement of ``__init__`` (after every layer is built)."""
    body = init.body
    if not isinstance(body, cst.IndentedBlock):
        raise Unrecognised(init, "__init__ is written on one line")
    stmts = list(body.body)
    # Before the first statement that can return: a parameter registered after an early
    # ``return`` is missing from the networks built through it (AttributeError in forward).
    first_return = next((i for i, s in enumerate(stmts) if _can_return(s)), len(stmts))
    # nn.Module refuses a parameter assigned before its own __init__ ran
    base_init = next((i for i, s in enumerate(stmts) if _calls_base_init(s)), -1)
    if first_return == 0 or base_init >= first_return:
        raise Unrecognised(
            stmts[first_return],
            f"__init__ can return before it registers anything (this statement comes before "
            f"the module's own __init__ ran, or first); register `self.{SCALE_ATTR} = "
            f"{nn}.Parameter({torch}.tensor([{float(value)!r}]))` by hand after "
            "`super().__init__()` and before that return",
        )
    stmt = cst.parse_statement(
        f"self.{SCALE_ATTR} = {nn}.Parameter({torch}.tensor([{float(value)!r}]))"
    )
    return FunctionEdit().insert_after(stmts[first_return - 1], stmt)


def _calls_base_init(stmt: cst.CSTNode) -> bool:
    """``super().__init__(...)`` or ``nn.Module.__init__(self)`` as a statement."""
    return isinstance(stmt, cst.SimpleStatementLine) and any(
        isinstance(s, cst.Expr) and call_name(s.value) == "__init__" for s in stmt.body
    )


def _can_return(stmt: cst.CSTNode) -> bool:
    """Whether a statement of ``__init__`` holds a ``return`` (not one of a nested def)."""
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return False
    if isinstance(stmt, cst.SimpleStatementLine):
        return any(isinstance(s, cst.Return) for s in stmt.body)
    return any(
        isinstance(s, cst.Return) for suite in sub_suites(stmt) for s, _ in small_statements(suite)
    )
