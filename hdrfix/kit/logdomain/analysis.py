"""The analysis of a file: its uses grouped into sites by root, with what looks like a site but
is not handled listed as unhandled.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from hdrfix.kit.logdomain.anchor import common_anchor
from hdrfix.kit.logdomain.exps import EXP_CALLS
from hdrfix.kit.logdomain.model import Analysis, Site, Unhandled, Use
from hdrfix.kit.logdomain.reach import _ReachFinder
from hdrfix.lang.astmatch import (
    assigned_value,
    call_name,
    call_owner,
    clamp_of,
    module_aliases,
    target_name,
    walrus_value,
)
from hdrfix.lang.names import loads

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import FunctionRef, PyFile


def analyse(pyfile: PyFile) -> Analysis:
    """Every site of the file (cached on the file: it is re-indexed after each edit)."""
    cached = pyfile.analyses.get(("logdomain", ""))
    if cached is not None and cached[0] is pyfile.tree:
        return cached[1]  # type: ignore[return-value]
    result = _Analyser(pyfile).run()
    pyfile.analyses[("logdomain", "")] = (pyfile.tree, result)
    return result


class _Analyser(_ReachFinder):
    def run(self) -> Analysis:
        self._seen: set[int] = set()
        groups: dict[tuple[str, str], Site] = {}
        for ref in self.pyfile.functions:
            if not self._may_exponentiate(ref):
                continue
            for use, trace in self._uses(ref):
                if trace.roots or trace.problems:
                    self._seen.add(id(use.exp))  # what it needs is said through its trace
                for line, qualname, why in trace.problems:
                    self._unhandled(line, qualname, why)
                if not trace.roots:
                    continue
                by_fn: dict[str, list[tuple[FunctionRef, ast.stmt]]] = {}
                for root_ref, stmt in trace.roots:
                    by_fn.setdefault(root_ref.qualname, []).append((root_ref, stmt))
                for roots in by_fn.values():
                    self._group(groups, roots, use)
        sites = sorted(groups.values(), key=lambda s: (s.ref.line, s.line))
        for site in sites:
            self._twice(site)
        self._strays(sites)
        self._unseen_exponentials({id(u.exp) for s in sites for u in s.uses} | self._seen)
        return Analysis(sites, _dedupe(self.unhandled), self.flows)

    def _group(self, groups, roots: list[tuple[FunctionRef, ast.stmt]], use: Use) -> None:
        ref = roots[0][0]
        flow = self.flow(ref)
        stmts = [s for _, s in roots]
        anchor = common_anchor(flow, stmts)
        residual = target_name(stmts[0], use.residual)
        key = (ref.qualname, f"{residual}:{anchor.lineno}")
        site = groups.get(key)
        if site is None:
            aliases = module_aliases(self.pyfile.tree, self.pyfile.node(ref))
            torch = next((a for a, m in aliases.items() if m == "torch"), None)
            owner = call_owner(use.exp) if isinstance(use.exp, ast.Call) else None
            numpy = owner if owner and aliases.get(owner) == "numpy" else None
            if owner and aliases.get(owner) == "torch":
                torch = owner
            site = Site(self.pyfile.rel, ref, residual, stmts, anchor, torch=torch, numpy=numpy)
            groups[key] = site
        else:
            site.roots += [s for s in stmts if s not in site.roots]
            site.anchor = common_anchor(flow, site.roots)
        if use not in site.uses:
            site.uses.append(use)

    def _strays(self, sites: list[Site]) -> None:
        """A residual computed from the network (a tanh of its output) that no site accounts
        for, in a function that exponentiates it or has no site at all: hdrfix cannot follow
        it to its reconstruction (``log_img.mul(...)``, a product of exps, a nested function),
        so it is listed rather than left unclamped without a word."""
        roots = {id(r) for s in sites for r in s.roots}
        with_sites = {s.ref.qualname for s in sites} | {
            u.ref.qualname for s in sites for u in s.uses
        }
        for ref in self.pyfile.functions:
            segment = self.pyfile.segment(ref)
            if not _exponentiates(segment) or "tanh(" not in segment:
                continue
            fn = self.pyfile.node(ref)
            exponentiated = {
                n.id
                for call in ast.walk(fn)
                if isinstance(call, ast.Call) and call_name(call) in EXP_CALLS
                for n in ast.walk(call)
                if isinstance(n, ast.Name)
            }
            flow = self.flow(ref)
            for stmt in flow.statements():
                name = target_name(stmt)
                value = assigned_value(stmt, name) if name else None
                if value is None or id(stmt) in roots or name in loads(value):
                    continue
                if not any(call_name(c) == "tanh" for c in ast.walk(value)):
                    continue
                if name not in exponentiated and ref.qualname in with_sites:
                    continue
                if self._predicted(ref, flow, flow.node_of(stmt), value, set()):
                    self._unhandled(
                        stmt.lineno,
                        ref.qualname,
                        f"{name} is computed from the network's output but reaches no "
                        f"exp(<log image> + {name}) hdrfix can follow; clamp it by hand",
                    )

    def _twice(self, site: Site) -> None:
        """A prediction assigned to the residual that no use sees: assigned twice on a path."""
        flow = self.flow(site.ref)
        for stmt in flow.statements():
            if stmt in site.roots:
                continue
            node = flow.node_of(stmt)
            value = assigned_value(stmt, site.residual)
            if value is None and site.residual in node.writes:
                value = walrus_value(stmt, site.residual)
            if value is None or site.residual in loads(value) or clamp_of(stmt, site.residual):
                continue
            if self._predicted(site.ref, flow, node, value, set()):
                self._unhandled(
                    stmt.lineno,
                    site.ref.qualname,
                    f"{site.residual} is computed here and again before it is used",
                )


def _exponentiates(text: str) -> bool:
    return "exp(" in text or "expm1(" in text


def _dedupe(items: list[Unhandled]) -> list[Unhandled]:
    return sorted(set(items), key=lambda u: (u.line, u.why))
