"""phase1 — the review's immediate fix: safer config values and a clamp on the log residual.

In every target config::

    log_delta_abs_max: 6.0        # was 16.0
    log_delta_alpha: 1.0          # was 1.2
    log_supervision_weight: 2.0   # was 1.0
    log_supervision_type: huber   # was l1

and in the framework, right after the residual is computed (Mode A or Mode B), at every site::

    delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from hdrfix.core.plugin import Phase, PhasePlan
from hdrfix.core.repo import Repo
from hdrfix.kit.configedit import plan_values, section_value
from hdrfix.kit.logdomain import assigned_after, common_anchor
from hdrfix.kit.readpath import section_notes
from hdrfix.kit.sitepatch import Unhandled, plan_sites
from hdrfix.kit.targets import config_files
from hdrfix.lang import yamledit
from hdrfix.lang.astmatch import walrus_value
from hdrfix.lang.inserts import Inserts
from hdrfix.lang.names import loads
from hdrfix_plugins.phase1 import DEFAULT_CLAMP
from hdrfix_plugins.phase1.clampstate import clamp_state, upstream

VALUES = {
    "log_delta_abs_max": 6.0,
    "log_delta_alpha": 1.0,
    "log_supervision_weight": 2.0,
    "log_supervision_type": "huber",
}
SCHEDULE = "loss.weight_schedule"  # when enabled, it overwrites the supervision weight per step


def plan(phase: Phase, repo: Repo, options: Mapping[str, Any]) -> PhasePlan:
    """The plan of phase1 (declared in ``hdrfix_plugins.phase1``)."""

    plan = PhasePlan(phase.name)
    configs = config_files(repo, options)
    plan_values(plan, repo, configs, VALUES)
    for rel in configs:
        plan.notes.extend(_config_notes(repo, rel, section_value))
    plan.notes.extend(section_notes(repo, options, configs))
    given = options.get("clamp")  # checked by its Option
    bound = DEFAULT_CLAMP if given is None else float(given)
    plan_sites(plan, repo, options, "clamp delta_log", _ClampSite(bound))
    return plan


def _config_notes(repo: Repo, rel: str, section_value: Any) -> list[str]:
    """What the new values mean in this config, where that is not what they say."""

    notes = []
    if section_value(repo, rel, "log_supervision_enable") is False:
        notes.append(
            f"{rel}: log_supervision_enable is false, so the log-supervision changes "
            "have no effect until it is enabled"
        )
    abs_max = section_value(repo, rel, "log_delta_abs_max")
    if isinstance(abs_max, (int, float)) and not isinstance(abs_max, bool) and abs_max <= 0:
        notes.append(
            f"{rel}: log_delta_abs_max is {abs_max}, which selects Mode B (the cap relative to "
            f"the patch's log range); setting it to {VALUES['log_delta_abs_max']} switches "
            "this config to Mode A"
        )
    schedule, _ = yamledit.section(repo.text(rel), rel, SCHEDULE)
    if hasattr(schedule, "get") and schedule.get("enable") is True:
        keys = ", ".join(f"{SCHEDULE}.{k}" for k in schedule if k.startswith("log_p")) or SCHEDULE
        notes.append(
            f"{rel}: {SCHEDULE}.enable is true, so the schedule overwrites "
            f"log_supervision_weight at every step ({keys}); the new weight "
            f"{VALUES['log_supervision_weight']} has no effect until those are changed"
        )
    return notes


class _ClampSite:
    """Adds ``<residual> = torch.clamp(<residual>, min=-B, max=B)`` right after the statement
    computing it (its Mode A / Mode B ``if``), in the same block; inside each branch where the
    residual is not assigned on every path out of that statement."""

    def __init__(self, bound: float) -> None:
        self.bound = bound

    def done(self, pyfile, analysis, site) -> bool:
        return clamp_state(analysis, pyfile, site, self.bound).clamped

    def notes(self, pyfile, analysis, site) -> list[str]:
        """Hand clamps that do not count (one-sided, wider than asked, after the use...)."""

        ignored = clamp_state(analysis, pyfile, site, self.bound).ignored
        return [f"{why}: not trusted as the clamp, hdrfix adds its own" for why in ignored]

    def edit(self, pyfile, analysis, site):
        r, b = site.residual, self.bound
        if site.numpy and not site.torch:
            code = f"{r} = {site.numpy}.clip({r}, -{b!r}, {b!r})"
        elif site.torch:
            code = f"{r} = {site.torch}.clamp({r}, min=-{b!r}, max={b!r})"
        else:
            raise Unhandled("this file does not import torch (add `import torch`)")
        _walrus_before_its_uses(site)
        flow = analysis.flows[site.ref.qualname]
        for anchors in ([_covering_anchor(flow, site)], site.roots):
            if all(assigned_after(flow, a, r) is not False for a in anchors):
                edit = Inserts()
                for anchor in anchors:
                    edit.insert_after(anchor, code)
                return [(site.ref, edit)]
        raise Unhandled(f"{r} is not assigned on every path where a clamp could go")


def _covering_anchor(flow, site):
    """The site's anchor, or, where another value of the residual reaches its uses from outside
    the anchor (``except RuntimeError: delta_log = torch.zeros_like(log_img)`` around the Mode A
    / Mode B ``if``), the statement holding that one too: a clamp after the anchor alone would
    leave that path unclamped. Rescales (``delta_log = delta_log * mask``) are not sources."""

    r = site.residual
    inside = {id(n) for n in ast.walk(site.anchor)}
    sources = [
        d.stmt
        for use in site.uses
        if use.ref.qualname == site.ref.qualname
        for d in upstream(flow, use.node, r)
        if d is not flow.entry
        and isinstance(d.stmt, ast.Assign)
        and r not in loads(d.stmt.value)
        and id(d.stmt) not in inside
    ]
    if not sources:
        return site.anchor
    return common_anchor(flow, [*site.roots, *sources])


def _walrus_before_its_uses(site) -> None:
    """``if (d := <Mode A>) ...:`` with the reconstruction inside that ``if``: no statement
    after the ``if`` comes before that use, so the site is listed rather than half clamped."""

    for root in site.roots:
        if not isinstance(root, ast.If) or walrus_value(root, site.residual) is None:
            continue
        inside = {id(n) for block in (root.body, root.orelse) for s in block for n in ast.walk(s)}
        if any(u.ref == site.ref and id(u.node.stmt) in inside for u in site.uses):
            raise Unhandled(
                f"{site.residual} is assigned with := in the test of the if at line "
                f"{root.lineno} and used inside it; assign it before the if, or clamp by hand"
            )
