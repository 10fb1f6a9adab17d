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

from collections.abc import Mapping
from typing import Any

from hdrfix.plugin import Phase, PhasePlan
from hdrfix.repo import Repo

VALUES = {
    "log_delta_abs_max": 6.0,
    "log_delta_alpha": 1.0,
    "log_supervision_weight": 2.0,
    "log_supervision_type": "huber",
}
DEFAULT_CLAMP = 8.0


class Phase1(Phase):
    name = "phase1"
    summary = "cap the log residual at 6.0 (alpha 1.0), huber log supervision x2, clamp at +-8"
    requires = ()

    def plan(self, repo: Repo, options: Mapping[str, Any]) -> PhasePlan:
        from hdrfix.configedit import plan_values, section_value
        from hdrfix.sitepatch import plan_sites
        from hdrfix.targets import config_files

        plan = PhasePlan(self.name)
        configs = config_files(repo, options)
        plan_values(plan, repo, configs, VALUES)
        for rel in configs:
            if section_value(repo, rel, "log_supervision_enable") is False:
                plan.notes.append(
                    f"{rel}: log_supervision_enable is false, so the log-supervision changes "
                    "have no effect until it is enabled"
                )
        bound = float(options.get("clamp") or DEFAULT_CLAMP)
        if bound <= 0:
            from hdrfix.errors import HdrfixError

            raise HdrfixError(f"--clamp must be positive, got {bound}")
        plan_sites(plan, repo, options, "clamp delta_log", _ClampSite(bound))
        return plan


class _ClampSite:
    """Adds ``<residual> = torch.clamp(<residual>, min=-B, max=B)`` after the computation."""

    def __init__(self, bound: float) -> None:
        self.bound = bound

    def done(self, site) -> bool:
        from hdrfix.logdomain import clamped_after

        return clamped_after(site)

    def edit(self, site):
        import libcst as cst

        from hdrfix.cst_edit import FunctionEdit

        r = site.residual
        stmt = cst.parse_statement(
            f"{r} = {site.torch}.clamp({r}, min=-{self.bound!r}, max={self.bound!r})"
        )
        return FunctionEdit().insert_after(site.compute.stmt, stmt)
