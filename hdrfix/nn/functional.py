"""The log-domain reconstruction path as plain functions (the ``torch.nn.functional`` of hdrfix).

Every function here computes exactly what the framework's log branch computes (the ``log`` arm
of its ``normalization.type`` dispatch, docs/design.md §2.1), in the same operation order, so a
result can be compared with the framework's tensors to the last bit. The branch, with the
phases that change it marked::

    warped_rgb, hole_mask = patch_input[:, :3], patch_input[:, 3:4]  ([N, 7, H, W] batch input)
    log_img   = log(clamp(warped_rgb, min=0) + eps)                  log_normalize
    denom     = clamp(max(log_img) - min(log_img), min=1e-6)         (per sample)
    Xn        = (log_img - min_log) / denom
    residual  = network(cat([Xn, patch_input[:, 3:]]),               (not here; 7 channels)
                        boundary_override=hole_mask)
    scale     = network.residual_scale_factor
    delta_log = alpha * tanh(residual) * abs_max * scale             residual_mode_a
              | (log_delta_scale * denom) * tanh(residual) * scale   residual_mode_b
              | residual * scale              (phase2, Mode A)       residual_learnable
    delta_log = clamp(delta_log, -8, 8)               (phase1)       clamp_residual
    delta_log = delta_log * mask_weight   (log_apply_delta_in_holes) hole_mask_weight
    Ln_hat    = log_img + delta_log
    Ln_hat    = clamp(Ln_hat, max=log(65504))         (bound)        bound_log_output
    prediction = exp(Ln_hat) - eps                                   reconstruct

Units: ``warped_rgb`` and ``prediction`` are linear HDR radiance; ``log_img``, ``delta_log``
and ``Ln_hat`` are natural-log radiance (a ``delta_log`` of ``d`` multiplies the brightness by
``e**d``). Shapes: images are ``[B, C, H, W]`` (C = 3 for colour), masks ``[B, 1, H, W]``,
per-sample statistics ``[B, 1, 1, 1]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from hdrfix.halffloat import HALF_MAX, log_ceiling

__all__ = [
    "DENOM_FLOOR",
    "HALF_MAX",
    "LOG_HALF_MAX",
    "PHASE1_CLAMP_BOUND",
    "LogNorm",
    "bound_log_output",
    "clamp_residual",
    "framework_mode",
    "hole_mask_weight",
    "hole_ring_weight",
    "log_ceiling",
    "log_normalize",
    "reconstruct",
    "residual_learnable",
    "residual_mode_a",
    "residual_mode_b",
    "restrict_to_holes",
    "scale_residual",
    "target_log_residual",
]

#: Floor of the per-sample log range ``denom`` (the framework's ``clamp(..., min=1e-6)``).
DENOM_FLOOR = 1e-6

#: The phase1 bound on the log residual: ``torch.clamp(delta_log, min=-8.0, max=8.0)``.
PHASE1_CLAMP_BOUND = 8.0

#: Modes of :func:`scale_residual`.
_MODES = ("auto", "a", "b", "learnable")


class LogNorm(NamedTuple):
    """Result of :func:`log_normalize`.

    * ``log_img`` [B, C, H, W]: ``log(clamp(warped_rgb, min=0) + eps)``, natural-log radiance;
    * ``min_log``, ``max_log`` [B, 1, 1, 1]: per-sample minimum and maximum of ``log_img``;
    * ``denom`` [B, 1, 1, 1]: ``clamp(max_log - min_log, min=1e-6)``, the per-sample log range;
    * ``xn`` [B, C, H, W]: ``(log_img - min_log) / denom``, in [0, 1]; the network's input.
    """

    log_img: torch.Tensor
    min_log: torch.Tensor
    max_log: torch.Tensor
    denom: torch.Tensor
    xn: torch.Tensor


def log_normalize(warped_rgb: torch.Tensor, eps: float = 1e-6) -> LogNorm:
    """Per-sample log normalisation of a linear HDR frame, exactly as the framework does it.

    Args:
        warped_rgb: [B, C, H, W] linear radiance (negative values are treated as 0; holes hold 0).
        eps: the framework's ``log_epsilon``; a 0 pixel becomes ``log(eps)`` (-13.8 for 1e-6).

    Returns:
        :class:`LogNorm` with ``log_img``, ``min_log``, ``max_log``, ``denom`` (floored at
        :data:`DENOM_FLOOR`, so a constant frame gives ``xn == 0`` instead of NaN) and ``xn``.
    """
    log_img = torch.log(torch.clamp(warped_rgb, min=0) + eps)
    min_log = log_img.amin(dim=(1, 2, 3), keepdim=True)
    max_log = log_img.amax(dim=(1, 2, 3), keepdim=True)
    denom = torch.clamp(max_log - min_log, min=DENOM_FLOOR)
    xn = (log_img - min_log) / denom
    return LogNorm(log_img, min_log, max_log, denom, xn)


def target_log_residual(
    target_rgb: torch.Tensor, log_img: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """The residual that would reconstruct the target exactly: [B, C, H, W], log units.

    ``torch.log(torch.clamp(target_rgb, min=0) + eps) - log_img`` — the framework's
    ``gt_delta_log``, as its log supervision computes it (ground truth, not a prediction).
    It is 0 wherever the warp delivered the true value and large inside holes (a hole's
    ``log_img`` is ``log(eps)``). This is the ``target_delta_log`` of the distribution losses.
    """
    return torch.log(torch.clamp(target_rgb, min=0) + eps) - log_img


def residual_mode_a(
    pred: torch.Tensor, alpha: float, abs_max: float, scale: float = 1.0
) -> torch.Tensor:
    """Mode A (fixed cap): ``alpha * torch.tanh(pred) * abs_max * scale``.

    Args:
        pred: [B, C, H, W] raw network output (unbounded).
        alpha: ``log_delta_alpha``; abs_max: ``log_delta_abs_max`` (> 0 selects this mode);
        scale: residual multiplier (the framework's ``scale``, the network's
            ``residual_scale_factor``: 1.0 as shipped).

    Returns:
        ``delta_log`` [B, C, H, W] in ``[-|alpha * abs_max * scale|, +|...|]``: ±19.2 with the
        shipped 1.2 and 16.0, ±6 with phase1's 1.0 and 6.0.
    """
    return alpha * torch.tanh(pred) * abs_max * scale


def residual_mode_b(
    pred: torch.Tensor, denom: torch.Tensor, log_delta_scale: float, scale: float = 1.0
) -> torch.Tensor:
    """Mode B (legacy, relative cap): ``(log_delta_scale * denom) * torch.tanh(pred) * scale``.

    Args:
        pred: [B, C, H, W] raw network output.
        denom: [B, 1, 1, 1] per-sample log range from :func:`log_normalize`.
        log_delta_scale: fraction of the log range the residual may span (0.9 shipped).
        scale: residual multiplier.

    Returns:
        ``delta_log`` [B, C, H, W], per sample within ``±log_delta_scale * denom * scale``.
    """
    return (log_delta_scale * denom) * torch.tanh(pred) * scale


def residual_learnable(pred_scaled: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mode A after phase2: ``pred_scaled * scale``.

    After phase2 the network itself returns ``torch.tanh(r) * residual_output_scale`` (see
    :class:`hdrfix.nn.LearnableResidualScale`), so the framework only multiplies by ``scale``.
    """
    return pred_scaled * scale


def framework_mode(abs_max: float, *, learnable: bool = False) -> str:
    """Which branch the framework takes: ``if log_delta_abs_max > 0.0`` Mode A else Mode B.

    Returns ``'a'`` (or ``'learnable'`` when the network applies the phase2 learnable scale,
    ``learnable=True``) for ``abs_max > 0.0``, else ``'b'`` (Mode B is unchanged by phase2).
    """
    if abs_max > 0.0:
        return "learnable" if learnable else "a"
    return "b"


def scale_residual(
    pred: torch.Tensor,
    *,
    mode: str = "auto",
    alpha: float = 1.0,
    abs_max: float = 0.0,
    denom: torch.Tensor | None = None,
    log_delta_scale: float = 0.9,
    scale: float = 1.0,
) -> torch.Tensor:
    """Turn the network output into ``delta_log`` [B, C, H, W] by one of the three modes.

    ``mode``: ``'a'`` → :func:`residual_mode_a`, ``'b'`` → :func:`residual_mode_b` (needs
    ``denom``), ``'learnable'`` → :func:`residual_learnable`, ``'auto'`` → the framework's own
    dispatch, ``'a'`` if ``abs_max > 0.0`` else ``'b'`` (:func:`framework_mode`). The keyword
    defaults are the framework's config defaults (``log_delta_abs_max`` 0.0, ``log_delta_alpha``
    1.0, ``log_delta_scale`` 0.9).
    """
    if mode not in _MODES:
        raise ValueError(f"unknown residual mode {mode!r}; expected one of {', '.join(_MODES)}")
    if mode == "auto":
        mode = framework_mode(abs_max)
    if mode == "a":
        return residual_mode_a(pred, alpha, abs_max, scale)
    if mode == "learnable":
        return residual_learnable(pred, scale)
    if denom is None:
        raise ValueError("Mode B scales by the per-sample log range: pass denom=")
    return residual_mode_b(pred, denom, log_delta_scale, scale)


def clamp_residual(delta_log: torch.Tensor, bound: float = PHASE1_CLAMP_BOUND) -> torch.Tensor:
    """The phase1 bound: ``torch.clamp(delta_log, min=-bound, max=bound)``, any shape.

    ``bound`` is in log units: 8.0 caps a pixel's brightness change at a factor ``e**8 ≈ 2981``.
    The gradient is 0 where the bound is active.
    """
    return torch.clamp(delta_log, min=-bound, max=bound)


def hole_ring_weight(hole_mask: torch.Tensor, ring_px: int) -> torch.Tensor:
    """Holes dilated by ``ring_px`` pixels, [B, 1, H, W] (:func:`hole_mask_weight` with a full
    ring, ``ring_kernel = 2 * ring_px + 1`` and ``ring_scale = 1``, as a single pooling).

    ``F.max_pool2d(hole_mask, kernel_size=2 * ring_px + 1, stride=1, padding=ring_px)``: 1 in a
    hole and within ``ring_px`` pixels (Chebyshev distance) of one, 0 elsewhere (for a 0/1 mask).
    """
    return F.max_pool2d(hole_mask, kernel_size=2 * ring_px + 1, stride=1, padding=ring_px)


def hole_mask_weight(
    hole_mask: torch.Tensor, ring_kernel: int = 0, ring_scale: float = 1.0
) -> torch.Tensor:
    """The framework's ``mask_weight`` when ``log_apply_delta_in_holes`` is on: [B, 1, H, W].

    Exactly the trainer's code: with ``k = ring_kernel`` (``log_delta_mask_ring_kernel``) above
    1, ``ring = F.max_pool2d(hole_mask, kernel_size=k, stride=1, padding=k // 2) - hole_mask``
    and ``torch.clamp(hole_mask + ring_scale * ring, 0.0, 1.0)``: 1 in holes, ``ring_scale``
    within ``k // 2`` pixels (Chebyshev distance) of one, 0 elsewhere; ``k`` <= 1 gives the hole
    mask itself. ``k`` must be odd (the framework falls back to the bare hole mask on an even
    ``k``, whose pooled map has the wrong size; this raises instead). With ``ring_scale`` 1.0
    this equals :func:`hole_ring_weight` with ``ring_px = k // 2`` for a 0/1 mask.
    """
    if ring_kernel <= 1:
        return hole_mask
    if ring_kernel % 2 == 0:
        raise ValueError(f"ring_kernel must be odd, got {ring_kernel}")
    ring = (
        F.max_pool2d(hole_mask, kernel_size=ring_kernel, stride=1, padding=ring_kernel // 2)
        - hole_mask
    )
    return torch.clamp(hole_mask + ring_scale * ring, 0.0, 1.0)


def restrict_to_holes(
    delta_log: torch.Tensor, hole_mask: torch.Tensor, ring_px: int
) -> torch.Tensor:
    """Zero the residual outside holes and a ``ring_px`` ring around them.

    ``delta_log * hole_ring_weight(hole_mask, ring_px)``; ``delta_log`` [B, C, H, W],
    ``hole_mask`` [B, 1, H, W] (1 = hole), result [B, C, H, W]. The framework multiplies by
    :func:`hole_mask_weight` (which has a ``ring_scale``) and uses that weight as the
    log-supervision mask.
    """
    return delta_log * hole_ring_weight(hole_mask, ring_px)


#: ``log_ceiling(HALF_MAX)`` = 11.089865684509277: the bound's default clamp value.
LOG_HALF_MAX = log_ceiling(HALF_MAX)


def bound_log_output(ln_hat: torch.Tensor, ceiling: float = HALF_MAX) -> torch.Tensor:
    """The bound phase: ``torch.clamp(ln_hat, max=log_ceiling(ceiling))``, any shape.

    Bounds the reconstruction rather than the residual: ``exp`` of the result is at most
    ``ceiling`` (linear radiance; default 65504, the largest half-float), so ``+inf`` and huge
    values become the ceiling and nothing overflows, while dark values and every pixel below
    the ceiling are untouched. ``log_ceiling`` instead of ``math.log`` keeps ``exp`` at or below
    the ceiling after float rounding (see :func:`log_ceiling`); for the default the inserted
    framework code is ``torch.clamp(Ln_hat, max=11.089865684509277)``. NaN stays NaN (as in
    ``torch.clamp``); ``-inf`` stays ``-inf`` (its ``exp`` is 0). Compute ``ln_hat`` in float32
    or float64: half precision cannot hold a log value near the ceiling safely.
    """
    return torch.clamp(ln_hat, max=log_ceiling(ceiling))


def reconstruct(
    log_img: torch.Tensor,
    delta_log: torch.Tensor,
    eps: float = 1e-6,
    *,
    ceiling: float | None = None,
) -> torch.Tensor:
    """Back to linear radiance: ``torch.exp(log_img + delta_log) - eps``, [B, C, H, W].

    With ``ceiling`` (e.g. :data:`HALF_MAX`) the log output ``Ln_hat = log_img + delta_log`` is
    first bounded by :func:`bound_log_output`, so the prediction is at most ``ceiling - eps``
    up to rounding. Without it this is the unpatched (and phase1/phase2) reconstruction, which
    overflows for large residuals. Values can be slightly negative (down to ``-eps``).
    """
    ln_hat = log_img + delta_log
    if ceiling is not None:
        ln_hat = bound_log_output(ln_hat, ceiling)
    return torch.exp(ln_hat) - eps
