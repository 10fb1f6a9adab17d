"""Mode A's rewrite planned on ``ast`` and made as text, where that gives libcst's result
(:mod:`hdrfix_plugins.phase2.modea_rewrite` answers everywhere else, and says why it refuses).

The new value is the factors' own source joined by `` * ``, as libcst prints the product it
builds: a factor keeps its text without its outer parentheses and gets new ones where it is not
an atom. This module answers only where the two trees agree on every test the rewrite makes:
the root is ``name = <value>`` with no parenthesis around the value and no ``a if c else b``;
each factor is one whose source span ``ast`` gives as libcst prints it; no string that
names the cap is written in a way the two read differently (an f-string, two literals joined).
"""

from __future__ import annotations

import ast
import re

from hdrfix.lang.astmatch import assigned_value, call_name, product_factors
from hdrfix.lang.inserts import Inserts
from hdrfix.lang.splice import source_span
from hdrfix.lang.stmtlines import placed_statements
from hdrfix_plugins.phase2.netread import loaded
from hdrfix_plugins.phase2.scale import CAP_ATTRS

_ATOMS = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.List, ast.Dict, ast.Set)
# printed in new parentheses by libcst's ``as_factor``, and spanned by ``ast`` without its own
_WRAPPED = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.NamedExpr, ast.Await)
_PLAIN_LITERAL = re.compile(r"[uU]?(?P<q>'|\")[A-Za-z_]+(?P=q)")


class _Unsure(Exception):
    """The two trees may answer differently here: libcst's rewrite decides."""


def plain_edit(pyfile, site) -> Inserts | None:
    """Mode A rewritten as ``<prediction> * <the factors that are not the cap>``; None where
    libcst's rewrite must answer (a refusal among them)."""
    try:
        return _edit(pyfile, site)
    except _Unsure:
        return None


def _edit(pyfile, site) -> Inserts | None:
    fn = pyfile.node(site.ref)
    is_cap, touches_cap = _cap_test(pyfile, fn)
    for root in site.roots:
        if assigned_value(root, site.residual) is None:
            continue
        if not (
            isinstance(root, ast.Assign)
            and len(root.targets) == 1
            and isinstance(root.targets[0], ast.Name)
            and not isinstance(root.value, ast.IfExp)
        ):
            raise _Unsure
        factors = product_factors(root.value)
        tanh = next((f for f in factors if call_name(f) == "tanh"), None)
        if tanh is None or not any(is_cap(f) for f in factors if f is not tanh):
            continue
        assert isinstance(tanh, ast.Call)
        inner = _tanh_argument(tanh)
        others = [f for f in factors if f is not tanh]
        if inner is None or any(_is_number(f) for f in others):
            raise _Unsure  # refused: libcst's rewrite says why
        kept = [f for f in others if not is_cap(f)]
        if any(touches_cap(f) for f in kept):
            raise _Unsure
        code = " * ".join(_as_factor(pyfile, f) for f in [inner, *kept])
        if "\n" in code or "\r" in code:
            raise _Unsure  # libcst re-indents a factor's later lines (and needs parentheses)
        return Inserts().replace_value(root, code)
    return None


def _tanh_argument(tanh: ast.Call) -> ast.expr | None:
    if len(tanh.args) == 1 and not tanh.keywords and not isinstance(tanh.args[0], ast.Starred):
        return tanh.args[0]
    if not tanh.args and not tanh.keywords and isinstance(tanh.func, ast.Attribute):
        return tanh.func.value
    return None


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _as_factor(pyfile, node: ast.AST) -> str:
    start, end = source_span(pyfile.source.text, pyfile.starts, node)
    text = pyfile.source.text[start:end]
    if isinstance(node, _ATOMS) or (_is_number(node) and not isinstance(node, ast.UnaryOp)):
        return text
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return text
    if isinstance(node, _WRAPPED):
        return f"({text})"
    raise _Unsure  # a tuple, a string, a comprehension: spans or printing may differ


def _cap_test(pyfile, fn):
    """libcst's ``_cap_test`` (:mod:`hdrfix_plugins.phase2.modea_rewrite`) on ``ast``."""
    cap_locals = {
        p.stmt.targets[0].id
        for p in placed_statements(pyfile, fn)
        if isinstance(p.stmt, ast.Assign)
        and len(p.stmt.targets) == 1
        and isinstance(p.stmt.targets[0], ast.Name)
        and _reads_cap(pyfile, p.stmt.value)
    }

    def is_cap(factor: ast.AST) -> bool:
        ident = (
            factor.attr
            if isinstance(factor, ast.Attribute)
            else factor.id
            if isinstance(factor, ast.Name)
            else ""
        )
        if ident in CAP_ATTRS or ident in cap_locals or "alpha" in ident or "abs_max" in ident:
            return True
        return (
            isinstance(factor, ast.Call)
            and _reads_cap(pyfile, factor)
            and not any(isinstance(n, ast.BinOp) for n in ast.walk(factor))
        )

    def touches_cap(node: ast.AST) -> bool:
        return _reads_cap(pyfile, node) or bool(loaded(node) & cap_locals)

    return is_cap, touches_cap


def _reads_cap(pyfile, node: ast.AST) -> bool:
    """A cap attribute, or a string literal naming one. libcst reads each literal of
    ``'a' 'b'`` alone and no f-string's text, ``ast`` only their joined value: a string that
    holds a cap's name and is not one plain literal is left to libcst."""
    unsure = False
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and n.attr in CAP_ATTRS:
            return True
        if (
            isinstance(n, ast.Constant)
            and isinstance(n.value, str)
            and any(cap in n.value for cap in CAP_ATTRS)
        ):
            start, end = source_span(pyfile.source.text, pyfile.starts, n)
            if not _PLAIN_LITERAL.fullmatch(pyfile.source.text[start:end]):
                unsure = True
            elif n.value in CAP_ATTRS:
                return True
    if unsure:
        raise _Unsure
    return False
