"""Standalone torch modules for the patched log-domain path.

The framework's log branch (docs/design.md §2) and the changes the phases make to it, as plain
torch code usable without the framework, organised like ``torch.nn`` / ``torch.nn.functional``:

* :mod:`hdrfix.nn.functional` — the math: :func:`log_normalize`, the residual modes
  (:func:`residual_mode_a`, :func:`residual_mode_b`, :func:`residual_learnable`,
  :func:`scale_residual`), phase1's :func:`clamp_residual`, the hole mask
  :func:`hole_mask_weight` (and :func:`restrict_to_holes`),
  the bound phase's :func:`bound_log_output` and :func:`reconstruct`;
* :mod:`hdrfix.nn.modules` — state: phase2's :class:`LearnableResidualScale` and the whole
  branch as :class:`LogResidualHead`;
* :mod:`hdrfix.nn.losses` — the framework's :func:`log_supervision_loss` and phase3's
  residual-distribution terms (histogram, moment, sparsity; never KL divergence);
* :mod:`hdrfix.nn.stats` — :func:`overflow_stats`.

Each function reproduces the framework's computation in the same operation order, so its
result matches the framework's tensors exactly (tests/test_nn.py checks this against the
fixture trainer). This package imports torch; the CLI's torch-free commands never import it.
"""

from . import functional
from .functional import (
    DENOM_FLOOR,
    HALF_MAX,
    LOG_HALF_MAX,
    PHASE1_CLAMP_BOUND,
    LogNorm,
    bound_log_output,
    clamp_residual,
    framework_mode,
    hole_mask_weight,
    hole_ring_weight,
    log_ceiling,
    log_normalize,
    reconstruct,
    residual_learnable,
    residual_mode_a,
    residual_mode_b,
    restrict_to_holes,
    scale_residual,
    target_log_residual,
)
from .losses import (
    DISTRIBUTION_LOSSES,
    SUPERVISION_KINDS,
    histogram_matching_loss,
    log_supervision_loss,
    masked_mean,
    moment_matching_loss,
    range_penalty,
    residual_distribution_loss,
    sparsity_loss,
)
from .modules import LearnableResidualScale, LogResidualHead, LogResidualOutput
from .stats import CLAMP_TOLERANCE, OverflowStats, overflow_stats

__all__ = [
    "CLAMP_TOLERANCE",
    "DENOM_FLOOR",
    "DISTRIBUTION_LOSSES",
    "HALF_MAX",
    "LOG_HALF_MAX",
    "PHASE1_CLAMP_BOUND",
    "SUPERVISION_KINDS",
    "LearnableResidualScale",
    "LogNorm",
    "LogResidualHead",
    "LogResidualOutput",
    "OverflowStats",
    "bound_log_output",
    "clamp_residual",
    "framework_mode",
    "functional",
    "histogram_matching_loss",
    "hole_mask_weight",
    "hole_ring_weight",
    "log_ceiling",
    "log_normalize",
    "log_supervision_loss",
    "masked_mean",
    "moment_matching_loss",
    "overflow_stats",
    "range_penalty",
    "reconstruct",
    "residual_distribution_loss",
    "residual_learnable",
    "residual_mode_a",
    "residual_mode_b",
    "restrict_to_holes",
    "scale_residual",
    "sparsity_loss",
    "target_log_residual",
]
