"""phase3: the review's distribution loss on the log residual (``phase``: configs and the
trainer's settings; ``term``: where the loss term goes in the training step)."""

from hdrfix_plugins.phase3.phase import Phase3

__all__ = ["Phase3"]
