"""hdrfix.nn: the log-domain path as standalone torch code, checked on hand-made tensors and
against the untouched fixture trainer (its ``log`` mode, docs/design.md §2.1).

Reusable by phase-specific tests: :func:`reference_log_branch` computes, with hdrfix.nn only,
what a trainer's ``last_log_branch`` and log-supervision loss must be after one step on a
batch (pass ``clamp_bound=8.0`` for phase1, ``ceiling=65504.0`` for bound; a phase2 network is
detected by its ``residual_output_scale``); :func:`assert_matches_last_log_branch` compares.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
# tiny tensors: one thread is fastest, and a busy machine makes multi-thread runs crawl
pytestmark = pytest.mark.usefixtures("one_thread")

from conftest import imported
from hypothesis import given, settings
from hypothesis import strategies as st

import hdrfix.nn as hnn
from hdrfix.nn import functional as HF
from hdrfix.validate.fixture import build_trainer
from hdrfix.validate.synth import make_field_batch

ATOL = 1e-6
CONFIG = Path("configs") / "colleague_training_config.yaml"
BRANCH_KEYS = ("delta_log", "Ln_hat", "prediction")


def t(values, **kw) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, **kw)


# --------------------------------------------------------------------------------------------
# Reference helpers (reusable by phase-specific equivalence tests)
# --------------------------------------------------------------------------------------------


def reference_log_branch(
    model,
    batch: dict[str, torch.Tensor],
    *,
    clamp_bound: float | None = None,
    ceiling: float | None = None,
    learnable: bool | None = None,
) -> dict[str, object]:
    """What hdrfix.nn says ``model``'s log branch computes on ``batch`` (the field's format).

    Reads the trainer's attributes (``log_epsilon``, ``log_delta_*``, ``log_apply_delta_in_holes``,
    ``log_delta_mask_ring_*``, ``log_sup_type``, ``log_sup_huber_delta``) and runs its
    ``patch_network`` on the input hdrfix.nn builds, with its ``residual_scale_factor`` as the
    scale (the same in training and validation); everything else is hdrfix.nn. ``learnable``
    None means: the network applies the phase2 scale iff it has ``residual_output_scale``.

    Returns ``delta_log``, ``Ln_hat``, ``prediction`` (the ``last_log_branch`` keys),
    ``log_loss`` (the log supervision term, unweighted), ``mask_weight``, ``norm`` and ``raw``
    (the network output).
    """
    patch_input = batch["patch_input"]
    hole_mask = patch_input[:, 3:4]
    eps = model.log_epsilon
    net = model.patch_network
    norm = hnn.log_normalize(patch_input[:, :3], eps)
    net_input = torch.cat([norm.xn, patch_input[:, 3:]], dim=1)
    with torch.no_grad():
        raw = net(net_input, boundary_override=hole_mask)
        if learnable is None:
            learnable = hasattr(net, "residual_output_scale")
        head = hnn.LogResidualHead(
            mode=hnn.framework_mode(model.log_delta_abs_max, learnable=learnable),
            alpha=model.log_delta_alpha,
            abs_max=model.log_delta_abs_max,
            log_delta_scale=model.log_delta_scale,
            clamp_bound=clamp_bound,
            ceiling=ceiling,
            eps=eps,
            in_holes=model.log_apply_delta_in_holes,
            ring_kernel=model.log_delta_mask_ring_kernel,
            ring_scale=model.log_delta_mask_ring_scale,
        )
        out = head(norm, raw, hole_mask, scale=net.residual_scale_factor)
        gt_delta_log = hnn.target_log_residual(batch["patch_target_rgb"], norm.log_img, eps)
        weight = out.mask_weight if out.mask_weight is not None else torch.ones_like(hole_mask)
        log_loss = hnn.log_supervision_loss(
            out.delta_log, gt_delta_log, weight, model.log_sup_type, model.log_sup_huber_delta
        )
    return {
        "delta_log": out.delta_log,
        "Ln_hat": out.ln_hat,
        "prediction": out.prediction,
        "log_loss": log_loss,
        "mask_weight": out.mask_weight,
        "norm": norm,
        "raw": raw,
    }


def assert_matches_last_log_branch(model, reference: dict[str, object], atol: float = ATOL):
    """``model.last_log_branch`` equals the reference within ``atol`` (no relative slack)."""
    for key in BRANCH_KEYS:
        torch.testing.assert_close(
            model.last_log_branch[key],
            reference[key],
            atol=atol,
            rtol=0,
            msg=lambda m, k=key: f"{k}: {m}",
        )


def build_model(trainer_module, config: dict, *, seed: int = 0, hot: float = 1.0):
    """A trainer with fixed weights; ``hot`` scales the output conv so that tanh saturates."""
    torch.manual_seed(seed)
    model = build_trainer(trainer_module, config)
    with torch.no_grad():
        model.patch_network.output_conv.weight.mul_(hot)
        model.patch_network.output_conv.bias.mul_(hot)
    return model


@pytest.fixture
def trainer(framework):
    """The untouched fixture trainer module, imported from a fresh copy, and its config."""
    with imported(framework, "train.patch_training_framework") as (module,):
        yield module, module.load_config(framework / CONFIG)


@pytest.fixture(scope="module")
def batch():
    return make_field_batch(2, 32, 48, seed=7)


# --------------------------------------------------------------------------------------------
# Equivalence with the untouched fixture trainer
# --------------------------------------------------------------------------------------------


def _configured(config: dict, **normalization) -> dict:
    config = copy.deepcopy(config)
    config["normalization"].update(normalization)
    return config


MODES = {"A": {}, "B": {"log_delta_abs_max": 0.0}}


@pytest.mark.parametrize("kind", hnn.SUPERVISION_KINDS)
@pytest.mark.parametrize("mode", sorted(MODES))
def test_training_step_matches_fixture(trainer, batch, mode, kind):
    """The shipped mask (holes plus a ring of kernel 5); delta_log read in dispatch 2."""
    module, config = trainer
    config = _configured(config, log_supervision_type=kind, **MODES[mode])
    model = build_model(module, config, seed=3, hot=20.0)
    assert (model.log_delta_abs_max > 0.0) == (mode == "A")
    assert model.norm_type == "log" and model.log_apply_delta_in_holes
    assert model.log_delta_mask_ring_kernel == 5

    out = model.training_step(batch, 0)
    ref = reference_log_branch(model, batch)
    assert_matches_last_log_branch(model, ref)
    # saturated on purpose: the comparison covers the overflowing regime, not only tiny values
    assert float(ref["delta_log"].abs().max()) > 5.0

    # the supervision term itself, and the trainer's total loss rebuilt around it
    theirs = out["loss_dict"]["log_supervision"]
    torch.testing.assert_close(ref["log_loss"], theirs, atol=ATOL, rtol=0)
    with torch.no_grad():
        sanitized = torch.nan_to_num(ref["prediction"], nan=0.0, posinf=1e6, neginf=0.0)
        recon, _ = model.patch_loss({"patch": sanitized}, {"patch": batch["patch_target_rgb"]})
    expected_total = recon + model.log_sup_weight * ref["log_loss"]
    torch.testing.assert_close(out["loss"].detach(), expected_total, atol=ATOL, rtol=0)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_validation_step_matches_fixture(trainer, batch, mode):
    """Scale != 1 (residual_scale_factor 0.75), no hole mask; the reconstruction inside
    dispatch 1; the overflow count agrees with the trainer's own."""
    module, config = trainer
    config = _configured(config, log_apply_delta_in_holes=False, **MODES[mode])
    config["network"]["residual_scale_factor"] = 0.75
    model = build_model(module, config, seed=5, hot=20.0)
    assert model.patch_network.residual_scale_factor == 0.75

    model.eval()
    metrics = model.validation_step(batch, 0)
    ref = reference_log_branch(model, batch)
    assert ref["mask_weight"] is None
    assert_matches_last_log_branch(model, ref)
    stats = hnn.overflow_stats(ref["prediction"], ref["delta_log"])
    assert stats.overflow_pixels == metrics["val_overflow_px"]
    if mode == "A":
        assert stats.overflow_pixels > 0  # the shipped settings overflow, as in the field


def test_ring_scale_matches_fixture(trainer, batch):
    """A softer ring (scale 0.25, kernel 3): the mask is hdrfix.nn's hole_mask_weight."""
    module, config = trainer
    config = _configured(config, log_delta_mask_ring_kernel=3, log_delta_mask_ring_scale=0.25)
    model = build_model(module, config, seed=1, hot=5.0)
    model.training_step(batch, 0)
    ref = reference_log_branch(model, batch)
    assert_matches_last_log_branch(model, ref)
    assert set(torch.unique(ref["mask_weight"]).tolist()) == {0.0, 0.25, 1.0}


def test_log_normalize_matches_fixture_network_input(trainer, batch):
    """The trainer's network sees exactly hdrfix.nn's Xn and the batch's other 4 channels
    (captured with a forward hook)."""
    module, config = trainer
    model = build_model(module, config)
    seen = []
    model.patch_network.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    model.training_step(batch, 0)
    norm = hnn.log_normalize(batch["patch_input"][:, :3], model.log_epsilon)
    torch.testing.assert_close(seen[0][:, :3], norm.xn, atol=0, rtol=0)
    assert torch.equal(seen[0][:, 3:], batch["patch_input"][:, 3:])


# --------------------------------------------------------------------------------------------
# functional
# --------------------------------------------------------------------------------------------


def test_log_normalize_shapes_and_denom_floor():
    x = torch.rand(2, 3, 4, 5) * 100
    x[1] = 2.0  # constant sample: log range 0, floored
    norm = hnn.log_normalize(x, 1e-6)
    assert norm.log_img.shape == norm.xn.shape == (2, 3, 4, 5)
    for stat in (norm.min_log, norm.max_log, norm.denom):
        assert stat.shape == (2, 1, 1, 1)
    assert float(norm.xn[0].min()) == 0.0 and float(norm.xn[0].max()) == pytest.approx(1.0)
    assert float(norm.denom[1]) == pytest.approx(hnn.DENOM_FLOOR)
    assert torch.equal(norm.xn[1], torch.zeros(3, 4, 5))
    # holes (0) and negatives map to log(eps)
    assert float(hnn.log_normalize(t([[[[0.0, -1.0]]]]), 1e-6).log_img.max()) == pytest.approx(
        math.log(1e-6)
    )


def test_residual_modes_known_values():
    pred = t([[[[-100.0, 0.0, 100.0]]], [[[-100.0, 0.0, 100.0]]]])  # [2, 1, 1, 3]
    a = hnn.residual_mode_a(pred, 1.2, 16.0)
    torch.testing.assert_close(a[0, 0, 0], t([-19.2, 0.0, 19.2]))
    torch.testing.assert_close(
        hnn.residual_mode_a(pred, 1.0, 6.0, 0.5)[0, 0, 0], t([-3.0, 0.0, 3.0])
    )
    denom = t([2.0, 10.0]).view(2, 1, 1, 1)
    b = hnn.residual_mode_b(pred, denom, 0.9)
    torch.testing.assert_close(b[:, 0, 0, 2], t([1.8, 9.0]))  # per sample
    torch.testing.assert_close(hnn.residual_learnable(pred, 0.5), pred * 0.5)

    # dispatch mirrors `if log_delta_abs_max > 0.0` Mode A else Mode B
    assert torch.equal(hnn.scale_residual(pred, mode="auto", alpha=1.2, abs_max=16.0), a)
    assert torch.equal(hnn.scale_residual(pred, mode="auto", abs_max=0.0, denom=denom), b)
    assert torch.equal(hnn.scale_residual(pred, mode="auto", abs_max=-1.0, denom=denom), b)
    assert torch.equal(hnn.scale_residual(pred, mode="learnable", scale=2.0), pred * 2.0)
    assert hnn.framework_mode(6.0, learnable=True) == "learnable"
    assert hnn.framework_mode(0.0, learnable=True) == "b"
    with pytest.raises(ValueError, match="denom"):
        hnn.scale_residual(pred, mode="b")
    with pytest.raises(ValueError, match="unknown residual mode"):
        hnn.scale_residual(pred, mode="c")


def test_clamp_and_restrict_to_holes():
    assert torch.equal(hnn.clamp_residual(t([-19.2, -3.0, 0.0, 8.5])), t([-8.0, -3.0, 0.0, 8.0]))
    assert torch.equal(hnn.clamp_residual(t([-7.0, 7.0]), 6.0), t([-6.0, 6.0]))

    hole = torch.zeros(1, 1, 7, 7)
    hole[0, 0, 3, 3] = 1.0
    delta = torch.ones(1, 3, 7, 7)
    out = hnn.restrict_to_holes(delta, hole, 1)
    expected = torch.zeros(1, 3, 7, 7)
    expected[:, :, 2:5, 2:5] = 1.0  # the hole plus a 1-px ring (Chebyshev)
    assert torch.equal(out, expected)
    assert torch.equal(hnn.hole_ring_weight(hole, 0), hole)

    # the framework's mask: kernel 3 = a 1-px ring, weighted by ring_scale; kernel <= 1: holes
    assert torch.equal(hnn.hole_mask_weight(hole, 3), hnn.hole_ring_weight(hole, 1))
    soft = hnn.hole_mask_weight(hole, 3, 0.5)
    assert float(soft[0, 0, 3, 3]) == 1.0 and float(soft[0, 0, 2, 2]) == 0.5
    assert float(soft.sum()) == 1.0 + 8 * 0.5
    assert torch.equal(hnn.hole_mask_weight(hole, 0), hole)
    assert torch.equal(hnn.hole_mask_weight(hole, 1, 0.5), hole)
    with pytest.raises(ValueError, match="odd"):
        hnn.hole_mask_weight(hole, 4)


def test_log_ceiling_is_safe_where_math_log_is_not():
    # the reason log_ceiling exists: float rounding puts exp(log(65504)) above 65504
    assert float(torch.exp(torch.tensor(math.log(65504.0)))) > 65504.0
    assert hnn.LOG_HALF_MAX == hnn.log_ceiling(65504.0) == 11.089865684509277
    for dtype in (torch.float32, torch.float64):
        assert float(torch.exp(torch.tensor(hnn.LOG_HALF_MAX, dtype=dtype))) <= 65504.0
    assert math.log(65504.0) - hnn.LOG_HALF_MAX < 1e-6
    assert float(torch.exp(torch.tensor(hnn.log_ceiling(1000.0)))) <= 1000.0
    with pytest.raises(ValueError):
        hnn.log_ceiling(0.0)


def test_bound_log_output_leaves_nothing_above_the_ceiling():
    ln_hat = t([-math.inf, -13.8, 0.0, 11.0, 11.0898, 11.1, 28.2, 1e30, math.inf])
    bounded = hnn.bound_log_output(ln_hat)
    prediction = torch.exp(bounded) - 1e-6
    assert bool(torch.isfinite(prediction).all())
    assert float(prediction.max()) <= 65504.0
    assert torch.equal(bounded[:5], ln_hat[:5])  # below the ceiling: untouched
    assert hnn.overflow_stats(prediction, bounded).overflow_pixels == 0

    log_img = torch.full((1, 3, 2, 2), 9.0)
    delta = torch.full((1, 3, 2, 2), 19.2)
    assert hnn.overflow_stats(hnn.reconstruct(log_img, delta), delta).overflow_pixels == 12
    bounded_pred = hnn.reconstruct(log_img, delta, ceiling=65504.0)
    assert float(bounded_pred.max()) <= 65504.0
    assert torch.equal(hnn.reconstruct(log_img, -delta), torch.exp(log_img - delta) - 1e-6)
    # a smaller ceiling, float64 too
    small = hnn.bound_log_output(torch.tensor([50.0], dtype=torch.float64), 1000.0)
    assert float(torch.exp(small)) <= 1000.0


def test_overflow_stats_counts_values():
    prediction = torch.ones(2, 3, 2, 2)
    prediction[0, :, 0, 0] = 1e5  # one pixel, three channels: counts 3 (per value)
    prediction[1, 0, 1, 1] = math.inf
    prediction[1, 1, 1, 1] = math.nan
    prediction[1, 2, 0, 1] = 65504.0  # at the ceiling: not overflow
    delta = torch.zeros(2, 3, 2, 2)
    delta[0, 0, 0, 0] = -8.0
    delta[0, 1, 0, 0] = 8.0 - 5e-7  # within 1e-6 of the bound: clamped
    delta[0, 2, 0, 0] = 7.9
    stats = hnn.overflow_stats(prediction, delta, clamp_bound=8.0)
    assert stats == hnn.OverflowStats(5, 2, 8.0, 2 / 24)
    assert stats.overflow_pixels == int(
        (~torch.isfinite(prediction) | (prediction > 65504.0)).sum()
    )
    assert hnn.overflow_stats(prediction, delta).clamped_share == 0.0
    assert hnn.overflow_stats(prediction, delta, ceiling=2e5).overflow_pixels == 2
    assert set(stats._asdict()) == {
        "overflow_pixels",
        "non_finite",
        "max_abs_delta",
        "clamped_share",
    }


# --------------------------------------------------------------------------------------------
# modules
# --------------------------------------------------------------------------------------------


def test_learnable_residual_scale_gradient_and_shape():
    head = hnn.LearnableResidualScale()
    assert head.residual_output_scale.shape == (1,)
    assert float(head.residual_output_scale.detach()) == 6.0
    assert [n for n, _ in head.named_parameters()] == ["residual_output_scale"]
    residual = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = head(residual)
    assert out.shape == residual.shape
    assert torch.equal(out, torch.tanh(residual) * head.residual_output_scale)
    out.sum().backward()
    grad = head.residual_output_scale.grad
    assert grad is not None and grad.shape == (1,)
    torch.testing.assert_close(grad, torch.tanh(residual.detach()).sum().view(1))
    assert residual.grad is not None and bool((residual.grad != 0).any())

    # one optimiser step moves the scale
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    opt.zero_grad()
    head(torch.full((1, 1, 2, 2), 10.0)).sum().backward()
    opt.step()
    assert float(head.residual_output_scale.detach()) != 6.0


def test_from_mode_a_reproduces_mode_a():
    raw = torch.randn(2, 3, 8, 8) * 3
    scale_head = hnn.LearnableResidualScale.from_mode_a(1.2, 16.0)
    assert float(scale_head.residual_output_scale.detach()) == pytest.approx(19.2)
    with torch.no_grad():
        torch.testing.assert_close(scale_head(raw), hnn.residual_mode_a(raw, 1.2, 16.0))


def test_log_residual_head_order_and_options():
    warped = torch.rand(1, 3, 6, 6) * 10
    warped[:, :, 2:4, 2:4] = 0.0
    hole = (warped[:, :1] == 0).float()
    norm = hnn.log_normalize(warped)
    raw = torch.full((1, 3, 6, 6), 50.0)

    head = hnn.LogResidualHead(
        abs_max=16.0, alpha=1.2, clamp_bound=8.0, ceiling=65504.0, in_holes=True, ring_kernel=3
    )
    assert head.resolved_mode == "a"
    out = head(norm, raw, hole)
    weight = hnn.hole_mask_weight(hole, 3)
    assert torch.equal(out.mask_weight, weight)
    assert torch.equal(
        out.delta_log, torch.clamp(1.2 * torch.tanh(raw) * 16.0 * 1.0, -8.0, 8.0) * weight
    )
    assert torch.equal(out.ln_hat, torch.clamp(norm.log_img + out.delta_log, max=hnn.LOG_HALF_MAX))
    assert torch.equal(out.prediction, torch.exp(out.ln_hat) - 1e-6)
    assert float(out.prediction.max()) <= 65504.0
    with pytest.raises(ValueError, match="hole mask"):
        head(norm, raw)

    plain = hnn.LogResidualHead(abs_max=0.0)
    assert plain.resolved_mode == "b" and plain(norm, raw).mask_weight is None

    learn = hnn.LogResidualHead(abs_max=6.0, learnable_scale=6.0)
    assert learn.resolved_mode == "learnable"
    assert [n for n, _ in learn.named_parameters()] == ["residual_scale.residual_output_scale"]
    torch.testing.assert_close(
        learn(norm, raw).delta_log, hnn.LogResidualHead(abs_max=6.0)(norm, raw).delta_log
    )
    with pytest.raises(ValueError):
        hnn.LogResidualHead(mode="kl")


def test_log_residual_head_from_config():
    cfg = {
        "log_epsilon": 1e-5,
        "log_delta_abs_max": 16.0,
        "log_delta_alpha": 1.2,
        "log_apply_delta_in_holes": True,
        "log_delta_mask_ring_kernel": 5,
        "log_delta_mask_ring_scale": 0.5,
    }
    head = hnn.LogResidualHead.from_config(cfg, clamp_bound=8.0)
    assert (head.eps, head.abs_max, head.alpha, head.log_delta_scale) == (1e-5, 16.0, 1.2, 0.9)
    assert (head.in_holes, head.ring_kernel, head.ring_scale) == (True, 5, 0.5)
    assert (head.clamp_bound, head.ceiling) == (8.0, None)
    assert hnn.LogResidualHead.from_config({}).in_holes is False
    assert hnn.LogResidualHead.from_config({}).resolved_mode == "b"
    assert "mode='a'" in repr(head)


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------


def test_histogram_matching_loss_known_values():
    x = t([[3.0, -1.0, 2.0, 0.5], [1.0, 1.0, -4.0, 0.0]])
    perm = x[:, [2, 0, 3, 1]]
    assert float(hnn.histogram_matching_loss(x, perm)) == 0.0
    assert float(hnn.histogram_matching_loss(x + 1.5, x)) == pytest.approx(1.5)
    # per sample: shifts of 1 and 3 average to 2
    shifted = x + t([[1.0], [3.0]])
    assert float(hnn.histogram_matching_loss(shifted, x)) == pytest.approx(2.0)
    # sorting is per sample, not across the batch: swapping samples is not free
    assert (
        float(hnn.histogram_matching_loss(t([[0.0, 0.0], [5.0, 5.0]]), t([[5.0, 5.0], [0.0, 0.0]])))
        == 5.0
    )
    # 4-D input is flattened per sample; equals the review's F.l1_loss of sorted values
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    review = torch.nn.functional.l1_loss(
        torch.sort(a.view(2, -1), dim=1)[0], torch.sort(b.view(2, -1), dim=1)[0]
    )
    torch.testing.assert_close(hnn.histogram_matching_loss(a, b), review)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(-20, 20, width=32), min_size=2, max_size=24),
    shift=st.floats(-5, 5, width=32),
    seed=st.integers(0, 2**16),
)
def test_histogram_matching_loss_properties(values, shift, seed):
    x = t(values).view(1, -1)
    perm = x[:, torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(seed))]
    assert float(hnn.histogram_matching_loss(x, perm)) == 0.0
    assert float(hnn.histogram_matching_loss(x + shift, x)) == pytest.approx(abs(shift), abs=1e-4)


def test_moment_matching_loss_known_values():
    x = t([[-1.0, 1.0], [0.0, 2.0]])  # means 0, 1; unbiased vars 2, 2
    assert float(hnn.moment_matching_loss(x, x[:, [1, 0]])) == 0.0
    # sample 0: mean +3, var x4 (2 -> 8); sample 1: unchanged
    y = t([[1.0, 5.0], [0.0, 2.0]])
    assert float(hnn.moment_matching_loss(y, x)) == pytest.approx((3.0 + 6.0 + 0.0) / 2)
    # per sample, unlike a batch-wide mean: opposite shifts do not cancel
    assert float(hnn.moment_matching_loss(x + t([[1.0], [-1.0]]), x)) == pytest.approx(1.0)


def test_sparsity_and_range_penalty():
    assert float(hnn.sparsity_loss(t([-2.0, 2.0]))) == 2.0
    assert float(hnn.sparsity_loss(torch.zeros(2, 3, 4, 4))) == 0.0
    assert float(hnn.range_penalty(t([-3.0, 0.5, 2.5, 1.0]), 2.0)) == pytest.approx((1.0 + 0.5) / 4)
    assert float(hnn.range_penalty(t([-2.0, 2.0]), 2.0)) == 0.0
    d = t([-9.0, 1.0]).requires_grad_()
    hnn.range_penalty(d, 8.0).backward()
    assert d.grad.tolist() == [-0.5, 0.0]


def test_residual_distribution_loss_dispatch():
    d, g = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    assert torch.equal(
        hnn.residual_distribution_loss("histogram", d, g), hnn.histogram_matching_loss(d, g)
    )
    assert torch.equal(
        hnn.residual_distribution_loss("moment", d, g), hnn.moment_matching_loss(d, g)
    )
    assert torch.equal(hnn.residual_distribution_loss("sparsity", d), hnn.sparsity_loss(d))
    none = hnn.residual_distribution_loss("none", d)
    assert none.shape == () and float(none) == 0.0
    with pytest.raises(ValueError, match="KL divergence is not offered"):
        hnn.residual_distribution_loss("kl", d, g)
    with pytest.raises(ValueError, match="target_delta_log"):
        hnn.residual_distribution_loss("histogram", d)
    with pytest.raises(ValueError, match="unknown"):
        hnn.residual_distribution_loss("wasserstein", d, g)


def test_losses_have_gradients():
    d = torch.randn(2, 3, 4, 4, requires_grad=True)
    g = torch.randn(2, 3, 4, 4)
    for kind in ("histogram", "moment", "sparsity"):
        d.grad = None
        hnn.residual_distribution_loss(kind, d, g).backward()
        assert (
            d.grad is not None and bool(torch.isfinite(d.grad).all()) and bool((d.grad != 0).any())
        )


def test_log_supervision_loss_known_values():
    pred = t([0.1, 1.0, -0.3]).view(1, 3, 1, 1)
    target = torch.zeros(1, 3, 1, 1)
    ones = torch.ones(1, 1, 1, 1)
    assert float(hnn.log_supervision_loss(pred, target, ones, "l1")) == pytest.approx(1.4 / 3)
    huber = (0.5 * 0.01 / 0.2 + (1.0 - 0.1) + (0.3 - 0.1)) / 3
    assert float(hnn.log_supervision_loss(pred, target, ones, "huber", 0.2)) == pytest.approx(huber)
    charb = sum(math.sqrt(v * v + 1e-6) for v in (0.1, 1.0, 0.3)) / 3
    assert float(hnn.log_supervision_loss(pred, target, ones, "charbonnier")) == pytest.approx(
        charb
    )
    # the [B, 1, H, W] weight counts once per channel; an empty mask gives 0, not NaN
    pred2 = t([[[[1.0, 3.0]]]]).expand(1, 3, 1, 2)
    w = t([[[[1.0, 0.0]]]])
    assert float(hnn.log_supervision_loss(pred2, torch.zeros(1, 3, 1, 2), w)) == pytest.approx(1.0)
    assert float(hnn.log_supervision_loss(pred2, torch.zeros(1, 3, 1, 2), w * 0)) == 0.0
    with pytest.raises(ValueError, match="log_supervision_type"):
        hnn.log_supervision_loss(pred, target, ones, "l2")


def test_target_log_residual_reconstructs_target(batch):
    norm = hnn.log_normalize(batch["patch_input"][:, :3])
    target = batch["patch_target_rgb"]
    target_delta = hnn.target_log_residual(target, norm.log_img)
    torch.testing.assert_close(
        hnn.reconstruct(norm.log_img, target_delta), target, rtol=1e-5, atol=1e-5
    )
    # zero wherever the warp delivered the true value
    assert float(target_delta.abs().mul(1 - batch["patch_input"][:, 3:4]).max()) == 0.0


def test_public_api_is_exported():
    for name in hnn.__all__:
        assert hasattr(hnn, name), name
    assert HF.scale_residual is hnn.scale_residual
