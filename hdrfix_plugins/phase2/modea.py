"""Mode A at a log-domain site: finding it (``ast``, for status) and rewriting it (libcst).

Mode A is ``tanh(<prediction>) * <cap>`` with more factors perhaps; after phase2 the network
returns the bounded residual, so Mode A becomes ``<prediction> * <the factors that are not the
cap>``. Mode A that reaches no reconstruction hdrfix sees is listed, never left silently.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

import libcst as cst

from hdrfix.core.plugin import Item, PhasePlan
from hdrfix.core.repo import Repo
from hdrfix.kit.logdomain import analyse
from hdrfix.kit.sitepatch import Unhandled
from hdrfix.kit.targets import site_files
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

#: The trainer attributes that make up Mode A's cap; the network's scale replaces them.
CAP_ATTRS = frozenset({"log_delta_alpha", "log_delta_abs_max"})


class ModeASite:
    """Mode A becomes ``<residual> * <the other factors>``: its tanh and its cap go.

    The cap is ``self.log_delta_alpha``/``self.log_delta_abs_max``, locals assigned from them
    (or from the config keys of those names), and names that say alpha/abs_max. Every other
    factor stays (``* scale * self.residual_gain`` keeps both); a number literal beside the
    tanh could be either, so such a site is refused with its reason.
    """

    def done(self, pyfile, analysis, site) -> bool:
        return not has_mode_a(pyfile, site)

    def edit(self, pyfile, analysis, site):
        found = _mode_a(pyfile, site)
        if found is None:
            raise Unhandled(
                "Mode A reads the cap but not as tanh(prediction) * cap (a method chain, or "
                "the tanh applied where the prediction is made); write "
                "`delta_log = residual_pred_log * scale` by hand"
            )
        value, tanh, is_cap, touches_cap = found
        inner = _tanh_argument(tanh)
        if inner is None:
            raise Unhandled(
                f"Mode A's `{code_of(tanh)}` has no one argument to keep; write "
                "`delta_log = <the prediction> * <the factors that are not the cap>` by hand"
            )
        factors = [f for f in product_factors(value) if f is not tanh]
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


def has_mode_a(pyfile, site) -> bool:
    """Whether a root still holds Mode A, read from ``ast``: cheap, for ``status`` and
    ``--check``; :func:`_mode_a` finds the same root in libcst to edit it.

    Mode A is a tanh times the cap; a root that reads the cap in any other form (a method
    chain, the tanh applied where the prediction is made) counts too: it is not migrated,
    and ``edit`` says why it cannot do it.
    """

    fn = pyfile.node(site.ref)
    for root in site.roots:
        value = assigned_value(root, site.residual)
        if value is None:
            continue
        if any(is_mode_a(fn, v) or _reads_cap(fn, v) for v in _branches(value)):
            return True
    return False


def _branches(value):
    """The values an expression can take: both arms of ``a if c else b``, else itself."""

    if isinstance(value, ast.IfExp):
        return [*_branches(value.body), *_branches(value.orelse)]
    return [value]


def _reads_cap(fn, value) -> bool:
    cap_locals = _cap_locals(fn)
    return any(
        (isinstance(n, ast.Attribute) and n.attr in CAP_ATTRS)
        or (isinstance(n, ast.Name) and n.id in cap_locals)
        for n in ast.walk(value)
    )


def is_mode_a(fn, value) -> bool:
    """``value`` multiplies a tanh by a cap (alpha, abs_max, or a local computed from them)."""

    from hdrfix.lang.astmatch import call_name

    def factors(node: ast.AST) -> list[ast.AST]:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return factors(node.left) + factors(node.right)
        return [node]

    parts = factors(value)
    tanh = [f for f in parts if call_name(f) == "tanh"]
    if not tanh:
        return False
    cap_locals = _cap_locals(fn)

    def is_cap(node: ast.AST) -> bool:
        ident = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
        return ident in CAP_ATTRS or ident in cap_locals or "alpha" in ident or "abs_max" in ident

    return any(is_cap(f) for f in parts if f is not tanh[0])


_CAP_LOCALS: dict[int, tuple[object, frozenset[str]]] = {}


def _cap_locals(fn) -> frozenset[str]:
    """Locals of ``fn`` assigned from the cap's attributes or config keys (once per function)."""

    cached = _CAP_LOCALS.get(id(fn))
    if cached is not None and cached[0] is fn:
        return cached[1]

    def reads_cap(node: ast.AST) -> bool:
        return any(
            (isinstance(n, ast.Attribute) and n.attr in CAP_ATTRS)
            or (isinstance(n, ast.Constant) and n.value in CAP_ATTRS)
            for n in ast.walk(node)
        )

    found = frozenset(
        t.id
        for n in ast.walk(fn)
        if isinstance(n, ast.Assign) and reads_cap(n.value)
        for t in n.targets
        if isinstance(t, ast.Name)
    )
    _CAP_LOCALS[id(fn)] = (fn, found)
    return found


def stray_mode_a(plan: PhasePlan, repo: Repo, options: Mapping[str, Any]) -> None:
    """Mode A outside every site (a method that computes the residual but reconstructs
    nothing hdrfix can see) would keep the old formula while its siblings change: listed."""

    for rel in site_files(repo, options).patched:
        pyfile = repo.python(rel)
        roots = {id(r) for s in analyse(pyfile).sites for r in s.roots}
        for ref in pyfile.functions:
            if "tanh(" not in pyfile.segment(ref):
                continue
            fn = pyfile.node(ref)
            for stmt in ast.walk(fn):
                value = getattr(stmt, "value", None)
                candidate = isinstance(stmt, (ast.Assign, ast.AnnAssign)) and value is not None
                line = getattr(stmt, "lineno", None)
                listed = any(i.path == rel and i.line == line for i in plan.unhandled)
                if candidate and not listed and id(stmt) not in roots and is_mode_a(fn, value):
                    plan.unhandled.append(
                        Item(
                            rel,
                            line,
                            f"{ref.qualname}: Mode A that reaches no reconstruction hdrfix "
                            "can see; rewrite it as `residual * scale` by hand",
                            False,
                        )
                    )


def _mode_a(pyfile, site):
    """(Mode A's value, its tanh factor, the cap test), or None when no root is Mode A: after
    phase2, or where the site has Mode B alone."""
    from hdrfix.lang.cst.match import call_name, product_factors

    index = cst_index(pyfile, site.ref)
    is_cap, touches_cap = _cap_test(index.fn)
    for root in site.roots:
        if assigned_value(root, site.residual) is None:
            continue
        for value in _cst_branches(index.value(root)):
            factors = product_factors(value)
            tanh = next((f for f in factors if call_name(f) == "tanh"), None)
            if tanh is not None and any(is_cap(f) for f in factors if f is not tanh):
                return value, tanh, is_cap, touches_cap
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
