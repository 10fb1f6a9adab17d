"""Mode A at a log-domain site: finding it (``ast``, for status and ``--check``, which thus
never import libcst); :mod:`hdrfix_plugins.phase2.modea_plain` rewrites it as text where that
is certain, :mod:`hdrfix_plugins.phase2.modea_rewrite` with libcst elsewhere.

Mode A is ``tanh(<prediction>) * <cap>`` with more factors perhaps; after phase2 the network
returns the bounded residual, so Mode A becomes ``<prediction> * <the factors that are not the
cap>``. Mode A that reaches no reconstruction hdrfix sees is listed, never left silently.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from hdrfix.core.plugin import Item, PhasePlan
from hdrfix.core.repo import Repo
from hdrfix.kit.logdomain import analyse
from hdrfix.kit.targets import site_files
from hdrfix.lang.astmatch import assigned_value
from hdrfix_plugins.phase2.scale import CAP_ATTRS


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
        from hdrfix_plugins.phase2.modea_plain import plain_edit

        planned = plain_edit(pyfile, site)
        if planned is not None:
            return [(site.ref, planned)]
        from hdrfix_plugins.phase2.modea_rewrite import edit

        return edit(pyfile, site)

    def notes(self, pyfile, analysis, site) -> list[str]:
        """The rewrite replaces Mode A's whole expression: comments written inside it go with
        it (a trailing comment of the line stays). Said, so that none goes unseen."""
        fn = pyfile.node(site.ref)
        comments = [
            comment
            for root in site.roots
            if (value := assigned_value(root, site.residual)) is not None
            and any(is_mode_a(fn, v) for v in _branches(value))
            for comment in _comments_inside(pyfile, root, value)
        ]
        if not comments:
            return []
        return [
            f"{pyfile.rel}: {site.ref.qualname}: phase2 rewrites Mode A without the comments "
            f"written inside it ({'; '.join(comments)}); put back by hand any that still apply"
        ]


def has_mode_a(pyfile, site) -> bool:
    """Whether a root still holds Mode A, read from ``ast``: cheap, for ``status`` and
    ``--check``; :func:`_mode_a` finds the same root in libcst to edit it
    (:mod:`hdrfix_plugins.phase2.modea_rewrite`).

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


def _comments_inside(pyfile, root: ast.stmt, value: ast.expr) -> list[str]:
    """The comments in ``root`` after its target: inside the value, or inside the parentheses
    around it, which libcst's node holds and the rewrite replaces with it."""
    import io
    import tokenize

    target = getattr(root, "target", None) or (getattr(root, "targets", None) or [value])[-1]
    first = target.end_lineno or target.lineno
    last = root.end_lineno or root.lineno
    starts, text = pyfile.starts, pyfile.source.text
    chunk = text[starts[first - 1] : starts[last] if last < len(starts) else len(text)]
    lines = chunk.splitlines(keepends=True)

    def at(row: int, col: int) -> tuple[int, int]:  # tokenize counts characters, ast bytes
        return row, len(lines[row - 1][:col].encode("utf-8")) if row <= len(lines) else col

    begin = (1, target.end_col_offset or 0)
    end = (last - first + 1, root.end_col_offset or 0)
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(chunk, newline=None).readline):
            if token.type == tokenize.COMMENT and begin < at(*token.start) < end:
                found.append(token.string)
    except (tokenize.TokenError, SyntaxError):
        return []  # a chunk cut inside a bracket it does not close: say nothing
    return found


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

    from hdrfix.lang.astmatch import call_name, product_factors

    parts = product_factors(value)
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
