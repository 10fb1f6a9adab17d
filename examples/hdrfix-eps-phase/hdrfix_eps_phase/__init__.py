"""eps4 — an example third-party phase.

A forward-warp hole holds 0, so the framework's log image there is ``log(eps)``: −13.8 with the
shipped ``log_epsilon: 1.0e-6``. A residual capped at 6 (phase1) cannot lift that to the true
value, which is why phase1 makes holes 5.7x worse (docs/design.md §4). Raising ``log_epsilon``
to 1e-4 starts holes at −9.2 instead. This phase sets it in every target config; it shows
everything a phase needs: a name, a summary, requirements, a typed option (``--eps``, made by
the CLI from ``options``), and a read-only ``plan`` built from hdrfix's helpers, so
``--dry-run``, ``--check``, ``status`` and ``revert`` work as for the built-ins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hdrfix.core.plugin import Option, Phase, PhasePlan
from hdrfix.core.repo import Repo


class RaiseLogEpsilon(Phase):
    name = "eps4"
    summary = "raise normalization.log_epsilon to 1e-4 (holes start at log 1e-4 = -9.2)"
    requires = ()
    options = (Option("eps", "the new log_epsilon (default 1e-4)", float),)

    def plan(self, repo: Repo, options: Mapping[str, Any]) -> PhasePlan:
        from hdrfix.kit.configedit import plan_values
        from hdrfix.kit.targets import config_files

        plan = PhasePlan(self.name)
        value = options.get("eps") or 1e-4  # `hdrfix apply eps4 --eps 1e-3`
        plan_values(plan, repo, config_files(repo, options), {"log_epsilon": value})
        return plan
