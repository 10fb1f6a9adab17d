"""phase1: clamp the log-domain value before every ``exp``, and the review's safer config values.

This module is the phase's declaration, light enough for ``--help`` and ``hdrfix list``; the
plan is in ``phase`` (imported only when a command plans), reading which sites a clamp already
covers from ``clampstate``."""

from hdrfix.core.plugin import Option, Phase

DEFAULT_CLAMP = 8.0


class Phase1(Phase):
    name = "phase1"
    summary = "cap the log residual at 6.0 (alpha 1.0), huber log supervision x2, clamp at +-8"
    requires = ()
    options = (
        # 0 would silently mean the default, and a clamp at 0 zeroes the residual
        Option("clamp", f"bound for |delta_log| (default {DEFAULT_CLAMP})", float, above=0.0),
    )
    residual_bound = DEFAULT_CLAMP
    planner = "hdrfix_plugins.phase1.phase:plan"


__all__ = ["DEFAULT_CLAMP", "Phase1"]
