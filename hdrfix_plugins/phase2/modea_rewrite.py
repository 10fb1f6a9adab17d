"""Rewriting Mode A with libcst: only a run that edits a site imports it."""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from hdrfix.kit.sitepatch import Unhandled
from hdrfix.lang.astmatch import assigned_value
from hdrfix.lang.cst.edit import FunctionEdit
from hdrfix.lang.cst.index import cst_index
from hdrfix.lang.cst.match import (
    as_factor,
    assignments,
    code_of,
    contains,
    join_product,
    loaded_names,
    name_of,
    product_factors,
    string_value,
    unparen,
)
from hdrfix_plugins.phase2.scale import CAP_ATTRS


def edit(pyfile, site):
    """Mode A becomes ``<residual> * <the factors that are not the cap>`` (see
    :class:`hdrfix_plugins.phase2.modea.ModeASite`)."""
    found = _mode_a(pyfile, site)
    if found is None:
        raise Unhandled(
            "Mode A reads the cap but not as tanh(prediction) * cap (a method chain, or "
            "the tanh applied where the prediction is made); write "
            "`delta_log = residual_pred_log * scale` by hand"
        )
    value, factors, tanh, is_cap, touches_cap = found
    inner = _tanh_argument(tanh)
    if inner is None:
        raise Unhandled(
            f"Mode A's `{code_of(tanh)}` has no one argument to keep; write "
            "`delta_log = <the prediction> * <the factors that are not the cap>` by hand"
        )
    # the factors the tanh was found among: ``unparen`` copies a parenthesised one, so a
    # second ``product_factors`` would hold a tanh that ``is not`` this one (and keep it)
    factors = [f for f in factors if f is not tanh]
    numbers = [f for f in factors if _is_number(f)]
    if numbers:
        raise Unhandled(
            "Mode A has a number factor beside the tanh; hdrfix cannot tell whether it is "
            "part of the cap (write `delta_log = residual_pred_log * scale` by hand)"
        )
    kept = [f for f in factors if not is_cap(f)]
    mixed = next((f for f in kept if touches_cap(f)), None)
    if mixed is not None:
        raise Unhandled(
            f"Mode A's factor `{code_of(mixed)}` reads the cap mixed with something else; "
            f"write `delta_log = {code_of(inner)}` times the factors that are not the cap "
            "by hand"
        )
    new = join_product([as_factor(inner)] + [as_factor(f) for f in kept])
    return [(site.ref, FunctionEdit().swap(value, new))]


def _tanh_argument(tanh):
    """What a tanh is applied to: ``torch.tanh(x)`` and ``F.tanh(x)`` take it as their one
    argument, the method form ``x.tanh()`` is called on it."""

    if len(tanh.args) == 1 and tanh.args[0].keyword is None and not tanh.args[0].star:
        return tanh.args[0].value
    if not tanh.args and isinstance(tanh.func, cst.Attribute):
        return tanh.func.value
    return None


def _is_number(node) -> bool:
    node = unparen(node)
    if isinstance(node, cst.UnaryOperation):
        node = node.expression
    return isinstance(node, (cst.Integer, cst.Float))


def _mode_a(pyfile, site):
    """(Mode A's value, its factors, its tanh factor, the cap test), or None when no root is
    Mode A: after phase2, or where the site has Mode B alone."""
    from hdrfix.lang.cst.match import call_name

    index = cst_index(pyfile, site.ref)
    is_cap, touches_cap = _cap_test(index.fn)
    for root in site.roots:
        if assigned_value(root, site.residual) is None:
            continue
        for value in _cst_branches(index.value(root)):
            factors = product_factors(value)
            tanh = next((f for f in factors if call_name(f) == "tanh"), None)
            if tanh is not None and any(is_cap(f) for f in factors if f is not tanh):
                return value, factors, tanh, is_cap, touches_cap
    return None


def _cst_branches(value):
    bare = unparen(value)  # a new node: only for the test, the edit swaps the original
    if isinstance(bare, cst.IfExp):
        return [*_cst_branches(bare.body), *_cst_branches(bare.orelse)]
    return [value]


def _reads_cap_cst(value: cst.CSTNode) -> bool:
    """Whether an expression reads a cap attribute or a config key of that name."""

    attrs = (a.attr.value for a in contains(value, cst.Attribute) if isinstance(a, cst.Attribute))
    strings = (string_value(s) for s in contains(value, cst.SimpleString))
    return any(a in CAP_ATTRS for a in attrs) or any(v in CAP_ATTRS for v in strings)


def _cap_test(
    fn: cst.FunctionDef,
) -> tuple[Callable[[cst.BaseExpression], bool], Callable[[cst.BaseExpression], bool]]:
    """Whether a factor of Mode A is part of its cap (see :class:`ModeASite`), and whether an
    expression reads the cap at all (directly or through a local assigned from it)."""

    cap_locals = {a.target for a in assignments(fn.body) if _reads_cap_cst(a.value)}

    def is_cap(factor: cst.BaseExpression) -> bool:
        bare = unparen(factor)
        # ``self.log_delta_alpha`` and ``self.cfg.log_delta_alpha`` alike: the last name
        ident = bare.attr.value if isinstance(bare, cst.Attribute) else name_of(factor) or ""
        if ident in CAP_ATTRS or ident in cap_locals or "alpha" in ident or "abs_max" in ident:
            return True
        # a conversion or lookup of the cap alone: ``float(self.config.log_delta_abs_max)``,
        # ``float(getattr(cfg, 'log_delta_alpha', 1.0))``; arithmetic inside could hide another
        # factor, so such a call is not the cap (and the edit is refused, naming it)
        return (
            isinstance(bare, cst.Call)
            and _reads_cap_cst(bare)
            and not contains(bare, cst.BinaryOperation)
        )

    def touches_cap(node: cst.BaseExpression) -> bool:
        return _reads_cap_cst(node) or bool(loaded_names(node) & cap_locals)

    return is_cap, touches_cap
