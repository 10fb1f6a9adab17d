"""phase3: the review's distribution loss on the log residual.

This module is the phase's declaration, light enough for ``--help`` and ``hdrfix list``; the
plan is in ``phase`` (configs and the trainer's settings) and ``term`` (where the loss term goes
in the training step)."""

from hdrfix.core.plugin import Option, Phase
from hdrfix_plugins.phase3.keys import DEFAULT_LOSS, DEFAULT_WEIGHT, LOSSES


class Phase3(Phase):
    name = "phase3"
    summary = "residual-distribution loss on delta_log (histogram|moment|sparsity|none), weighted"
    requires = ("phase1",)
    options = (
        Option(
            "loss",
            f"residual distribution loss (default {DEFAULT_LOSS})",
            choices=LOSSES,
            hint="KL divergence is not offered: residuals are signed values, not a probability "
            "distribution (see the review)",
        ),
        Option("weight", f"weight of that loss (default {DEFAULT_WEIGHT})", float, at_least=0.0),
    )
    planner = "hdrfix_plugins.phase3.phase:plan"


__all__ = ["Phase3"]
