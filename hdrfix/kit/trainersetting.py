"""Reading a new setting in a trainer's ``__init__``, the way it reads its other settings.

The field's trainers read the ``normalization`` section into attributes, one line per key::

    norm_cfg = config.get('normalization', {}) or {}
    self.log_epsilon = float(norm_cfg.get('log_epsilon', 1e-6))
    self.log_delta_abs_max = float(norm_cfg.get('log_delta_abs_max', 0.0))
    ...
    self.hole_ring_px = int(norm_cfg.get('hole_ring_px', 2))

A phase that adds a config key must have the code read it the same way, or the key does
nothing. The section is recognised by its ``log_delta_abs_max`` read (whatever the mapping is
called: ``norm_cfg``, ``cfg``, ``config['normalization']``), and the new line goes after the
last read from that same mapping in that block, reusing the mapping's text and the quotes the
reads use::

    self.log_output_max = float(norm_cfg.get('log_output_max', 11.089865684509277))

A setting counts as read when ``__init__`` assigns ``self.<key>`` at all (by hand counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from hdrfix.kit.settingreads import MARKER, Read
from hdrfix.lang.cst.match import (
    attr_of_self,
    code_of,
    contains,
    find_all,
    statements,
    string_value,
)

if TYPE_CHECKING:
    from hdrfix.core.plugin import PhasePlan
    from hdrfix.lang.pyfile import FunctionRef, PyFile


@dataclass(frozen=True)
class Settings:
    mapping: cst.BaseExpression  # what the settings are read from, e.g. ``norm_cfg``
    anchor: cst.BaseStatement  # the last statement reading from it: new reads go after it
    quote: str  # the quote character the reads use for keys


def _gets(node: cst.CSTNode) -> list[tuple[cst.BaseExpression, str]]:
    """``(mapping, key)`` for each ``mapping.get('key', ...)`` inside ``node``, in no particular
    order within ``node`` (its callers ask which mappings and keys, not which comes first)."""
    found = []
    for call in contains(node, cst.Call):
        assert isinstance(call, cst.Call)
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "get" and call.args:
            key = string_value(call.args[0].value)
            if key is not None:
                found.append((func.value, key))
    return found


def _self_assigns(stmt: cst.CSTNode) -> list[tuple[cst.BaseExpression, cst.BaseExpression]]:
    """``(target, value)`` of each ``self.X = ...`` in ``stmt``, annotated ones included
    (``self.X: float = ...``: typed trainers read their settings that way)."""
    if not isinstance(stmt, cst.SimpleStatementLine):
        return []
    found: list[tuple[cst.BaseExpression, cst.BaseExpression]] = []
    for s in stmt.body:
        if isinstance(s, cst.Assign) and len(s.targets) == 1:
            found.append((s.targets[0].target, s.value))
        elif isinstance(s, cst.AnnAssign) and s.value is not None:
            found.append((s.target, s.value))
    return [(t, v) for t, v in found if attr_of_self(t)]


def find_settings(init: cst.FunctionDef, marker: str = MARKER) -> Settings | None:
    """Where ``init`` reads the section holding ``marker``; None if it does not read it."""
    for place in statements(init.body):
        for _, value in _self_assigns(place.stmt):
            for mapping, key in _gets(value):
                if key != marker:
                    continue
                anchor = place.stmt
                for other in place.block.body:
                    if any(
                        m.deep_equals(mapping) for _, v in _self_assigns(other) for m, _ in _gets(v)
                    ):
                        anchor = other
                quote = next(
                    s.quote
                    for s in find_all(value, cst.SimpleString)
                    if isinstance(s, cst.SimpleString)
                )
                assert isinstance(anchor, cst.BaseStatement)
                return Settings(mapping, anchor, quote[0] if quote[0] in "'\"" else "'")
    return None


def attr_reading(init: cst.FunctionDef, key: str) -> str | None:
    """The attribute ``init`` stores ``key`` in (``self.X = ...get('key'...)``), if any."""
    for place in statements(init.body):
        for target, value in _self_assigns(place.stmt):
            if any(k == key for _, k in _gets(value)):
                return attr_of_self(target)
    return None


def assigning(init: cst.FunctionDef, attr: str) -> cst.CSTNode | None:
    """The statement of ``init`` that assigns ``self.<attr>``, if any."""
    for place in statements(init.body):
        if any(attr_of_self(t) == attr for t, _ in _self_assigns(place.stmt)):
            return place.stmt
    return None


def read_statement(settings: Settings, read: Read) -> cst.BaseStatement:
    q = settings.quote
    default = f"{q}{read.default}{q}" if isinstance(read.default, str) else repr(read.default)
    return cst.parse_statement(
        f"self.{read.key} = {read.cast}({code_of(settings.mapping)}.get({q}{read.key}{q}, "
        f"{default}))"
    )


def plan_missing_reads(
    plan: PhasePlan,
    pyfile: PyFile,
    rel: str,
    ref: FunctionRef,
    class_name: str,
    reads: Sequence[Read],
) -> bool:
    """:func:`hdrfix.kit.settingplan.plan_reads` where a read is missing: one item per read,
    and the edit adding the missing ones after the last read of the section."""
    from hdrfix.lang.cst.edit import FunctionEdit
    from hdrfix.lang.cst.lines import FunctionLines

    init = pyfile.cst(ref)
    settings = find_settings(init)
    if settings is None:
        return False
    lines = FunctionLines(ref, init, pyfile)
    missing = []
    for read in reads:
        what = f"{class_name}.__init__ reads {read.key}"
        existing = assigning(init, read.key)
        if existing is not None:
            plan.done(rel, lines.line(existing), what)
        else:
            plan.todo(rel, lines.line(settings.anchor), what)
            missing.append(read_statement(settings, read))
    if missing:
        edit = FunctionEdit().insert_after(settings.anchor, *missing)
        plan.function_edits.append((rel, ref, edit.apply(init)))
    return True
