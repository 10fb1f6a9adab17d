"""phase1: clamp the log-domain value before every ``exp`` (``phase``), reading which sites a
clamp already covers from ``clampstate``."""

from hdrfix_plugins.phase1.phase import Phase1

__all__ = ["Phase1"]
