"""Mode A's kept factors that may hold another value than the one the code means.

phase2 keeps every factor of Mode A that is not the cap (``* scale`` stays). When such a factor
is a local that more than one assignment can reach (``scale`` set to the network's scale factor,
then set again to a noise strength under a flag), the kept product multiplies by whichever ran
last: the code did that before phase2 too, but the rewrite is where a user reads that line
again, so phase2 says so (a note: it changes nothing, and the choice is the user's).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import Any

from hdrfix.core.plugin import PhasePlan
from hdrfix.core.repo import Repo
from hdrfix.kit.logdomain import analyse
from hdrfix.kit.targets import site_files
from hdrfix.lang.astmatch import assigned_value, product_factors
from hdrfix.lang.flow import Flow, flow_of
from hdrfix_plugins.phase2.modea import is_mode_a


def note_rebound_factors(plan: PhasePlan, repo: Repo, options: Mapping[str, Any]) -> None:
    for rel in site_files(repo, options).patched:
        pyfile = repo.python(rel)
        for site in analyse(pyfile).sites:
            fn = pyfile.node(site.ref)
            flow: Flow | None = None
            for root in site.roots:
                value = assigned_value(root, site.residual)
                if value is None or not is_mode_a(fn, value):
                    continue  # Mode B, or already rewritten: phase2 changes nothing there
                factors = product_factors(value)
                flow = flow or flow_of(fn)
                for name in _names(factors):
                    defs = _distinct(flow.defs_of(name, flow.node_of(root)), name)
                    if len(defs) > 1:
                        # no line numbers: a note is not renumbered to the file on disk
                        shown = " or ".join(f"`{_short(code)}`" for _, code in defs)
                        plan.notes.append(
                            f"{rel}: {site.ref.qualname}: Mode A keeps the factor `{name}`, "
                            f"which there can hold {shown}; check that it is the one you mean"
                        )


def _names(factors: Iterable[ast.AST]) -> list[str]:
    return sorted({f.id for f in factors if isinstance(f, ast.Name)})


def _distinct(defs: Iterable[Any], name: str) -> list[tuple[int, str]]:
    """(line, assigned value) of each reaching assignment of ``name``; one per distinct value."""
    found: dict[str, int] = {}
    for node in defs:
        stmt = node.stmt
        value = getattr(stmt, "value", None)
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or value is None:
            code = f"what binds {name} at line {getattr(stmt, 'lineno', '?')}"
        else:
            code = ast.unparse(value)
        found.setdefault(code, getattr(stmt, "lineno", 0))
    return sorted((line, code) for code, line in found.items())


def _short(code: str, most: int = 60) -> str:
    return code if len(code) <= most else code[: most - 3] + "..."
