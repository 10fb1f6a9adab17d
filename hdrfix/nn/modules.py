"""Modules for the stateful parts of the patched log-domain path (the ``torch.nn`` of hdrfix).

:class:`LearnableResidualScale` is the head phase2 inserts into ``PatchNetwork``;
:class:`LogResidualHead` is the whole log branch of the framework (residual scaling, phase1
clamp, hole restriction, bound, reconstruction) as one configurable module, built on
:mod:`hdrfix.nn.functional`.

Typical use, outside any framework::

    warped_rgb, hole_mask = patch_input[:, :3], patch_input[:, 3:4]  # [N, 7, H, W] input
    norm = F.log_normalize(warped_rgb, eps)                          # hdrfix.nn.functional
    raw = network(torch.cat([norm.xn, patch_input[:, 3:]], dim=1))   # [N, 3, H, W]
    head = LogResidualHead(abs_max=6.0, alpha=1.0, clamp_bound=8.0, ceiling=65504.0)
    out = head(norm, raw, hole_mask)                                 # LogResidualOutput
    out.prediction                                                   # linear HDR [N, 3, H, W]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import nn

from . import functional as HF

__all__ = ["LearnableResidualScale", "LogResidualHead", "LogResidualOutput"]


class LearnableResidualScale(nn.Module):
    """Phase2's learnable output scale: ``torch.tanh(residual) * self.residual_output_scale``.

    Exactly what phase2 adds to ``PatchNetwork``: in ``__init__``
    ``self.residual_output_scale = nn.Parameter(torch.tensor([init]))`` (shape [1], log units,
    default 6.0) and, applied once to the residual the network returns,
    ``torch.tanh(residual) * self.residual_output_scale``. The output lies in
    ``±|residual_output_scale|``; the scale is trained with the rest of the network.

    Shape: any (typically [B, C, H, W]) in, same shape out.
    """

    def __init__(self, init: float = 6.0) -> None:
        super().__init__()
        self.residual_output_scale = nn.Parameter(torch.tensor([float(init)]))

    @classmethod
    def from_mode_a(cls, alpha: float, abs_max: float) -> LearnableResidualScale:
        """The scale that reproduces Mode A: init ``alpha * abs_max``.

        ``tanh(r) * (alpha * abs_max)`` equals Mode A's ``alpha * tanh(r) * abs_max`` up to
        float rounding; this is the value checkpoint migration gives the new parameter.
        """
        return cls(alpha * abs_max)

    def forward(self, residual: torch.Tensor) -> torch.Tensor:
        return torch.tanh(residual) * self.residual_output_scale

    def extra_repr(self) -> str:
        return f"scale={float(self.residual_output_scale.detach()[0]):g}"


class LogResidualOutput(NamedTuple):
    """Result of :class:`LogResidualHead`; the names of the framework's ``last_log_branch``.

    * ``delta_log`` [B, C, H, W]: the final log residual (scaled, clamped, restricted);
    * ``ln_hat`` [B, C, H, W]: ``log_img + delta_log``, bounded when a ceiling is set (the
      framework's ``Ln_hat``; what the log supervision compares with ``target_log``);
    * ``prediction`` [B, C, H, W]: ``torch.exp(ln_hat) - eps``, linear radiance, raw (not
      passed through ``nan_to_num``);
    * ``mask_weight`` [B, 1, H, W] or None: the hole-and-ring weight when the residual applies
      in holes only (``log_apply_delta_in_holes``; the framework's log-supervision mask), else
      None.
    """

    delta_log: torch.Tensor
    ln_hat: torch.Tensor
    prediction: torch.Tensor
    mask_weight: torch.Tensor | None


class LogResidualHead(nn.Module):
    """The framework's log branch after the network, with each phase switchable.

    Args:
        mode: ``'auto'`` (the framework's dispatch: Mode A if ``abs_max > 0.0`` else Mode B;
            with ``learnable_scale`` Mode A becomes ``'learnable'``), or ``'a'``, ``'b'``,
            ``'learnable'`` explicitly (see :func:`hdrfix.nn.functional.scale_residual`).
            Use ``'learnable'`` without ``learnable_scale`` when the network already applies
            the phase2 scale itself (a patched ``PatchNetwork``).
        alpha, abs_max: ``log_delta_alpha``, ``log_delta_abs_max`` (Mode A).
        log_delta_scale: Mode B's fraction of the per-sample log range.
        clamp_bound: phase1's ``torch.clamp(delta_log, -b, b)`` bound (8.0), or None for none.
        ceiling: the bound phase's largest linear output (65504.0), or None for no bound.
        learnable_scale: initial value of a :class:`LearnableResidualScale` owned by this head
            and applied to the raw network output (phase2 outside the network), or None.
        eps: ``log_epsilon`` subtracted after ``exp``.
        in_holes: apply the residual in holes (and a ring) only, as the framework's
            ``log_apply_delta_in_holes`` does; False leaves it everywhere.
        ring_kernel, ring_scale: the ring around the holes (``log_delta_mask_ring_kernel``,
            odd, <= 1 for none; ``log_delta_mask_ring_scale``), see
            :func:`hdrfix.nn.functional.hole_mask_weight`.

    Order of operations, as in the framework: learnable scale (if owned) → mode scaling →
    clamp → hole restriction → ``Ln_hat = log_img + delta_log`` → bound → ``exp - eps``.
    """

    def __init__(
        self,
        *,
        mode: str = "auto",
        alpha: float = 1.0,
        abs_max: float = 0.0,
        log_delta_scale: float = 0.9,
        clamp_bound: float | None = None,
        ceiling: float | None = None,
        learnable_scale: float | None = None,
        eps: float = 1e-6,
        in_holes: bool = False,
        ring_kernel: int = 0,
        ring_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if mode not in ("auto", "a", "b", "learnable"):
            raise ValueError(f"unknown residual mode {mode!r}; expected auto, a, b or learnable")
        self.mode = mode
        self.alpha = float(alpha)
        self.abs_max = float(abs_max)
        self.log_delta_scale = float(log_delta_scale)
        self.clamp_bound = None if clamp_bound is None else float(clamp_bound)
        self.ceiling = None if ceiling is None else float(ceiling)
        self.eps = float(eps)
        self.in_holes = bool(in_holes)
        self.ring_kernel = int(ring_kernel)
        self.ring_scale = float(ring_scale)
        self.residual_scale = (
            None if learnable_scale is None else LearnableResidualScale(learnable_scale)
        )

    @classmethod
    def from_config(cls, normalization: Mapping[str, Any], **overrides: Any) -> LogResidualHead:
        """Build from a framework config's ``normalization:`` mapping, with its defaults.

        Reads ``log_epsilon`` (1e-6), ``log_delta_abs_max`` (0.0), ``log_delta_alpha`` (1.0),
        ``log_delta_scale`` (0.9), ``log_apply_delta_in_holes`` (False),
        ``log_delta_mask_ring_kernel`` (0) and ``log_delta_mask_ring_scale`` (1.0) with the
        framework's defaults; ``overrides`` (any ``__init__`` keyword, e.g.
        ``clamp_bound=8.0``, ``ceiling=65504.0``, ``mode='learnable'``) win.
        """
        cfg = normalization or {}
        kwargs: dict[str, Any] = {
            "eps": float(cfg.get("log_epsilon", 1e-6)),
            "abs_max": float(cfg.get("log_delta_abs_max", 0.0)),
            "alpha": float(cfg.get("log_delta_alpha", 1.0)),
            "log_delta_scale": float(cfg.get("log_delta_scale", 0.9)),
            "in_holes": bool(cfg.get("log_apply_delta_in_holes", False)),
            "ring_kernel": int(cfg.get("log_delta_mask_ring_kernel", 0)),
            "ring_scale": float(cfg.get("log_delta_mask_ring_scale", 1.0)),
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def resolved_mode(self) -> str:
        """The mode actually used: ``'a'``, ``'b'`` or ``'learnable'``."""
        if self.mode != "auto":
            return self.mode
        return HF.framework_mode(self.abs_max, learnable=self.residual_scale is not None)

    def forward(
        self,
        norm: HF.LogNorm,
        residual_pred_log: torch.Tensor,
        hole_mask: torch.Tensor | None = None,
        *,
        scale: float = 1.0,
    ) -> LogResidualOutput:
        """Run the branch.

        Args:
            norm: :func:`hdrfix.nn.functional.log_normalize` of the warped frame (uses
                ``log_img`` [B, C, H, W] and, in Mode B, ``denom`` [B, 1, 1, 1]).
            residual_pred_log: [B, C, H, W] network output.
            hole_mask: [B, 1, H, W], 1 = hole; required when ``in_holes`` is set.
            scale: residual multiplier (the framework's ``scale``, its network's
                ``residual_scale_factor``: 1.0 as shipped).
        """
        residual = residual_pred_log
        if self.residual_scale is not None:
            residual = self.residual_scale(residual)
        delta_log = HF.scale_residual(
            residual,
            mode=self.resolved_mode,
            alpha=self.alpha,
            abs_max=self.abs_max,
            denom=norm.denom,
            log_delta_scale=self.log_delta_scale,
            scale=scale,
        )
        if self.clamp_bound is not None:
            delta_log = HF.clamp_residual(delta_log, self.clamp_bound)
        mask_weight = None
        if self.in_holes:
            if hole_mask is None:
                raise ValueError("in_holes is set: pass the hole mask")
            mask_weight = HF.hole_mask_weight(hole_mask, self.ring_kernel, self.ring_scale)
            delta_log = delta_log * mask_weight
        ln_hat = norm.log_img + delta_log
        if self.ceiling is not None:
            ln_hat = HF.bound_log_output(ln_hat, self.ceiling)
        prediction = torch.exp(ln_hat) - self.eps
        return LogResidualOutput(delta_log, ln_hat, prediction, mask_weight)

    def extra_repr(self) -> str:
        parts = [f"mode={self.resolved_mode!r}"]
        if self.resolved_mode == "a":
            parts += [f"alpha={self.alpha:g}", f"abs_max={self.abs_max:g}"]
        elif self.resolved_mode == "b":
            parts.append(f"log_delta_scale={self.log_delta_scale:g}")
        parts += [
            f"clamp_bound={self.clamp_bound}",
            f"ceiling={self.ceiling}",
            f"eps={self.eps:g}",
            f"in_holes={self.in_holes}",
            f"ring_kernel={self.ring_kernel}",
            f"ring_scale={self.ring_scale:g}",
        ]
        return ", ".join(parts)
