"""Losses on the log-domain residual: the framework's log supervision and phase3's terms.

Every loss is one short plain-torch expression, written out in its docstring, so that the
code phase3 inserts into a user's framework can mirror it 1:1 (same operations, same order,
hence the same value to the last bit). All return a 0-dim tensor and are differentiable in
their first argument.

Shapes: ``delta_log`` / ``target_delta_log`` are [B, ...] (normally [B, C, H, W]) and hold
natural-log radiance differences; each sample is the flattened ``[B, N]`` view,
``x.flatten(1)``. ``target_delta_log`` is the residual that reconstructs the target exactly,
``log(clamp(target_rgb, min=0) + eps) - log_img``
(:func:`hdrfix.nn.functional.target_log_residual`).

No KL divergence, on purpose: the review (``spec/000_c5db1df392ade063.txt``, "KL DIVERGENCE
REGULARIZATION") rejects it as mathematically incorrect here — residuals are signed values,
not probability distributions; the softmax needed to make them one destroys sign and
magnitude (``softmax([-5, 5, -2, 2]) = [0.0009, 0.993, 0.002, 0.0048]``); and flattening pixels
into one "distribution" treats them as IID samples. It recommends the histogram, moment and
sparsity terms below instead.
"""

from __future__ import annotations

import torch

__all__ = [
    "DISTRIBUTION_LOSSES",
    "SUPERVISION_KINDS",
    "histogram_matching_loss",
    "log_supervision_loss",
    "masked_mean",
    "moment_matching_loss",
    "range_penalty",
    "residual_distribution_loss",
    "sparsity_loss",
]

#: ``log_supervision_type`` values the framework accepts.
SUPERVISION_KINDS = ("l1", "huber", "charbonnier")

#: ``kind`` values of :func:`residual_distribution_loss`.
DISTRIBUTION_LOSSES = ("histogram", "moment", "sparsity", "none")


def masked_mean(value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The framework's weighted mean: ``(value * m).sum() / m.sum().clamp(min=1.0)``.

    ``m = mask.expand_as(value)``: a [B, 1, H, W] mask counts once per channel of a
    [B, C, H, W] value; an all-zero mask gives 0 instead of NaN.
    """
    mask = mask.expand_as(value)
    return (value * mask).sum() / mask.sum().clamp(min=1.0)


def log_supervision_loss(
    pred_log: torch.Tensor,
    target_log: torch.Tensor,
    weight: torch.Tensor,
    kind: str = "l1",
    huber_delta: float = 0.2,
) -> torch.Tensor:
    """The framework's log supervision (``log_sup_loss`` in its ``training_step``), exactly.

    With ``diff = pred_log - target_log`` ([B, C, H, W], log units) the per-element loss is

    * ``'l1'``: ``diff.abs()``;
    * ``'huber'``: ``torch.where(diff.abs() <= d, 0.5 * diff ** 2 / d, diff.abs() - 0.5 * d)``
      with ``d = huber_delta`` (quadratic within ``d``, linear slope 1 beyond: the framework's
      Huber is divided by ``d``, i.e. ``F.smooth_l1_loss`` with ``beta=d``);
    * ``'charbonnier'``: ``torch.sqrt(diff ** 2 + 1e-6)``;

    reduced by :func:`masked_mean` with ``weight`` ([B, 1, H, W]: ones, or the hole-and-ring
    ``mask_weight`` when ``log_apply_delta_in_holes`` is on). The framework passes
    ``pred_log = delta_log`` and ``target_log = gt_delta_log = log(clamp(target_rgb, min=0) +
    eps) - log_img`` (:func:`hdrfix.nn.functional.target_log_residual`), chosen by its
    ``log_sup_type``, and wraps the result in ``torch.nan_to_num``. (``Ln_hat`` against the
    target's log gives the same difference up to rounding.)
    """
    diff = pred_log - target_log
    if kind == "l1":
        per_px = diff.abs()
    elif kind == "huber":
        d = huber_delta
        abs_diff = diff.abs()
        per_px = torch.where(abs_diff <= d, 0.5 * diff**2 / d, abs_diff - 0.5 * d)
    elif kind == "charbonnier":
        per_px = torch.sqrt(diff**2 + 1e-6)
    else:
        raise ValueError(f"unknown log_supervision_type: {kind!r}")
    return masked_mean(per_px, weight)


def histogram_matching_loss(
    delta_log: torch.Tensor, target_delta_log: torch.Tensor
) -> torch.Tensor:
    """L1 between the sorted predicted and sorted target residuals of each sample.

    Exactly::

        pred_sorted = torch.sort(delta_log.flatten(1), dim=1).values
        target_sorted = torch.sort(target_delta_log.flatten(1), dim=1).values
        loss = (pred_sorted - target_sorted).abs().mean()

    Sorting each sample's N values gives its empirical quantile function; the mean absolute
    difference of two quantile functions is the 1-Wasserstein distance between the two value
    distributions, so the loss ignores *where* values are and only matches *which* values
    occur (a permutation costs 0, a constant shift ``c`` costs ``|c|``). Every sample has the
    same N, so the mean over all [B, N] elements is the mean over the batch of the per-sample
    means; it equals the review's ``F.l1_loss(pred_sorted, gt_sorted)``. Gradients flow through
    ``torch.sort``'s values.
    """
    pred_sorted = torch.sort(delta_log.flatten(1), dim=1).values
    target_sorted = torch.sort(target_delta_log.flatten(1), dim=1).values
    return (pred_sorted - target_sorted).abs().mean()


def moment_matching_loss(delta_log: torch.Tensor, target_delta_log: torch.Tensor) -> torch.Tensor:
    """Match each sample's mean and variance: ``|mean diff| + |var diff|``, batch-averaged.

    Exactly::

        pred, target = delta_log.flatten(1), target_delta_log.flatten(1)
        mean_diff = (pred.mean(dim=1) - target.mean(dim=1)).abs()
        var_diff = (pred.var(dim=1) - target.var(dim=1)).abs()
        loss = (mean_diff + var_diff).mean()

    Per sample over its N = C*H*W values; ``var`` is torch's default unbiased variance
    (divides by N - 1; NaN for N = 1). Units: log for the mean term, log² for the variance
    term. The review's Option B writes ``delta_log.mean()`` / ``delta_log.var()`` over the
    whole batch at once; per sample is used here (as the review itself asks of the histogram
    term and of ``denom``), so that one sample's statistics cannot compensate another's.
    """
    pred, target = delta_log.flatten(1), target_delta_log.flatten(1)
    mean_diff = (pred.mean(dim=1) - target.mean(dim=1)).abs()
    var_diff = (pred.var(dim=1) - target.var(dim=1)).abs()
    return (mean_diff + var_diff).mean()


def sparsity_loss(delta_log: torch.Tensor) -> torch.Tensor:
    """Mean absolute residual: ``delta_log.abs().mean()`` (log units, any shape).

    The review's Option C (``torch.abs(delta_log).mean()``): pulls residuals towards 0,
    i.e. towards "keep the warped pixel". Needs no target.
    """
    return delta_log.abs().mean()


def range_penalty(delta_log: torch.Tensor, safe: float) -> torch.Tensor:
    """Mean excess over a safe magnitude: ``torch.relu(delta_log.abs() - safe).mean()``.

    0 while every ``|delta_log| <= safe`` (log units), then linear in the excess: a soft,
    differentiable alternative to the phase1 clamp, whose gradient is 0 where it is active.
    """
    return torch.relu(delta_log.abs() - safe).mean()


def residual_distribution_loss(
    kind: str, delta_log: torch.Tensor, target_delta_log: torch.Tensor | None = None
) -> torch.Tensor:
    """Phase3's configurable term: dispatch on ``kind``.

    ``'histogram'`` → :func:`histogram_matching_loss`, ``'moment'`` →
    :func:`moment_matching_loss` (both need ``target_delta_log``), ``'sparsity'`` →
    :func:`sparsity_loss`, ``'none'`` → ``delta_log.new_zeros(())``. ``'kl'`` and anything
    else raise ``ValueError``: KL divergence is deliberately absent (see the module docstring).
    """
    if kind == "none":
        return delta_log.new_zeros(())
    if kind == "sparsity":
        return sparsity_loss(delta_log)
    if kind in ("histogram", "moment"):
        if target_delta_log is None:
            raise ValueError(f"the {kind} loss matches a target: pass target_delta_log")
        if kind == "histogram":
            return histogram_matching_loss(delta_log, target_delta_log)
        return moment_matching_loss(delta_log, target_delta_log)
    if kind.lower() in ("kl", "kl_div", "kldiv", "kl_divergence"):
        raise ValueError(
            "KL divergence is not offered: residuals are signed values, not probability "
            "distributions (see spec/000_c5db1df392ade063.txt); use histogram, moment or sparsity"
        )
    raise ValueError(
        f"unknown residual distribution loss {kind!r}; expected one of "
        + ", ".join(DISTRIBUTION_LOSSES)
    )
