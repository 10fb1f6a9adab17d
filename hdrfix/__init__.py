"""hdrfix: apply the HDR log-residual review's phases to a training framework."""

__version__ = "0.2.0"
