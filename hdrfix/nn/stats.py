"""Overflow statistics of a log-domain reconstruction (what ``hdrfix validate`` reports)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from .functional import HALF_MAX

__all__ = ["CLAMP_TOLERANCE", "OverflowStats", "overflow_stats"]

#: A residual within this distance of the clamp bound counts as clamped (log units).
CLAMP_TOLERANCE = 1e-6


class OverflowStats(NamedTuple):
    """Result of :func:`overflow_stats`; plain Python numbers (``._asdict()`` is JSON-ready).

    * ``overflow_pixels`` (int): elements of ``prediction`` above the ceiling or not finite;
    * ``non_finite`` (int): elements of ``prediction`` that are inf or NaN (a subset of the
      above);
    * ``max_abs_delta`` (float): ``max |delta_log|`` in log units (NaN if it holds a NaN,
      0.0 if it is empty);
    * ``clamped_share`` (float in [0, 1]): share of ``delta_log`` elements with
      ``|delta_log| >= clamp_bound - 1e-6``; 0.0 without a clamp bound.
    """

    overflow_pixels: int
    non_finite: int
    max_abs_delta: float
    clamped_share: float


@torch.no_grad()
def overflow_stats(
    prediction: torch.Tensor,
    delta_log: torch.Tensor,
    *,
    ceiling: float = HALF_MAX,
    clamp_bound: float | None = None,
) -> OverflowStats:
    """Count overflow in a raw prediction and describe the residual that caused it.

    Args:
        prediction: [B, C, H, W] linear radiance *before* any ``nan_to_num`` (the framework's
            ``last_log_branch['prediction']``).
        delta_log: the log residual, any shape (normally [B, C, H, W]).
        ceiling: largest acceptable value (65504, the largest half-float).
        clamp_bound: the phase1 clamp bound (8.0) to measure how often it is active, or None.

    Counting is per value, not per spatial position: an "overflow pixel" is one element of
    ``prediction``, so a pixel blown out in all three channels counts 3. That is what the
    framework's own ``val_overflow_px`` counts, ``int((~torch.isfinite(prediction) |
    (prediction > 65504.0)).sum())``, and what docs/design.md §4 reports; the two agree exactly
    for the default ceiling.
    """
    finite = torch.isfinite(prediction)
    overflow_pixels = int((~finite | (prediction > ceiling)).sum())
    non_finite = int((~finite).sum())
    abs_delta = delta_log.abs()
    max_abs_delta = float(abs_delta.max()) if abs_delta.numel() else 0.0
    if clamp_bound is None or abs_delta.numel() == 0:
        clamped_share = 0.0
    else:
        clamped = abs_delta >= clamp_bound - CLAMP_TOLERANCE
        clamped_share = float(clamped.sum()) / abs_delta.numel()
    return OverflowStats(overflow_pixels, non_finite, max_abs_delta, clamped_share)
