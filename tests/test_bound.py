"""bound: the reconstruction clamped at log(ceiling) at every site; no output above the ceiling."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import hdrfix, imported, snapshot
from fielddata import (
    CONFIG,
    HALF_MAX,
    INFERENCE,
    LOG_MAX,
    MISSING,
    PRESET,
    TOOLS,
    TRAINER,
    applied,
    check_file,
    check_transformed,
    edit,
    train_step,
)
from sitecheck import bounds_per_use

from hdrfix.core.repo import Repo
from hdrfix.kit.logdomain import analyse
from hdrfix_plugins.bound import log_ceiling

# The dry run, --check, a second apply and revert on the fixture and the variants: test_contract.
CEILING = {"normalization.log_output_max": (MISSING, float(LOG_MAX))}
TRAINER_CLASS = "PatchFrameInterpolationTrainer"
READS = (
    "self.log_sup_huber_delta = float(norm_unified.get('log_supervision_huber_delta', 0.2))",
    f"self.log_output_max = float(norm_unified.get('log_output_max', {LOG_MAX}))",
)


def bounds_per_exp(repo: Path, rel: str) -> list[int]:
    """For each reconstruction: how many ceilings bound it, whether on its named sum
    (``Ln_hat = torch.clamp(Ln_hat, max=...)``, counted by sitecheck.bounds_per_use) or, for a
    sum with no name, inside the exp (``exp(torch.clamp(log_img + delta_log, max=...))``)."""
    uses = [use for _, use in analyse(Repo(repo).python(rel)).uses()]
    inline = [int(u.bound is not None and u.bound.high is not None) for u in uses if not u.recon]
    if not inline:
        return bounds_per_use(repo, rel)
    assert len(inline) == len(uses), "named and unnamed sums in one file: count them apart"
    return inline


def test_log_ceiling_is_hdrfix_nn_s_and_stays_below_the_ceiling() -> None:
    torch = pytest.importorskip("torch")
    from hdrfix.nn import log_ceiling as nn_log_ceiling

    assert repr(log_ceiling(HALF_MAX)) == LOG_MAX
    for ceiling in (HALF_MAX, 1000.0, 4096.0, 1e4, 2.5, 3.0e38, 123456.789):
        value = log_ceiling(ceiling)
        assert value == nn_log_ceiling(ceiling)
        assert float(torch.exp(torch.tensor(value, dtype=torch.float32))) <= ceiling
        assert value <= torch.log(torch.tensor(ceiling, dtype=torch.float64))


def test_a_ceiling_at_every_site_and_in_every_config(framework: Path) -> None:
    result, before, after = applied(framework, "bound")
    for rel in (CONFIG, PRESET):
        check_file(before, after, rel, CEILING)
    # training reconstructs in the log arm of its second dispatch, validation in the log arm of
    # its first; each is bounded right after `Ln_hat = log_img + delta_log`, before the exp
    clamp = "Ln_hat = torch.clamp(Ln_hat, max=self.log_output_max)"
    check_file(
        before,
        after,
        TRAINER,
        [
            edit(f"{TRAINER_CLASS}.__init__", READS[0], added=[READS[1]]),
            edit(
                f"{TRAINER_CLASS}.training_step",
                " " * 8 + "Ln_hat = log_img + delta_log",
                added=[" " * 8 + clamp],
            ),
            edit(
                f"{TRAINER_CLASS}.validation_step",
                " " * 4 + "Ln_hat = log_img + delta_log",
                added=[" " * 4 + clamp],
            ),
        ],
    )
    assert bounds_per_use(framework, TRAINER) == [1, 1]
    assert f"not patched: {INFERENCE}:" in result.err and f"not patched: {TOOLS}:" in result.err
    assert "oracle_residual" not in result.err  # it reconstructs from the ground truth


def test_ceiling_option(framework: Path) -> None:
    bad = hdrfix("apply", "bound", "--repo", framework, "--ceiling", "0.5")
    assert bad.code == 2 and "--ceiling must be a finite number above 1" in bad.err
    assert hdrfix("apply", "bound", "--repo", framework, "--ceiling", "1000").code == 0
    value = repr(log_ceiling(1000.0))
    config = (framework / CONFIG).read_text(encoding="utf-8")
    assert f"  log_output_max: {value}\n" in config
    assert f"norm_unified.get('log_output_max', {value})" in (framework / TRAINER).read_text()
    # checked later without --ceiling, the chosen value counts as applied
    assert hdrfix("apply", "bound", "--repo", framework, "--check").code == 0
    assert hdrfix("apply", "bound", "--repo", framework, "--check", "--ceiling", "65504").code == 1


def test_include_uses_the_literal_value(framework: Path) -> None:
    includes = ("--include", framework / INFERENCE, "--include", framework / TOOLS)
    result, before, after = applied(framework, "bound", *includes)
    assert "not patched" not in result.err
    # outside the trainer there is no config to read: each named sum is clamped at the literal
    for rel, scope, pad, name in (
        (INFERENCE, "PatchInpainting.inpaint", "    ", "log_hat"),
        (TOOLS, "reconstruct", "", "Ln_hat"),
    ):
        check_file(
            before,
            after,
            rel,
            [
                edit(
                    scope,
                    f"{pad}{name} = log_img + delta_log",
                    added=[f"{pad}{name} = torch.clamp({name}, max={LOG_MAX})"],
                )
            ],
        )


def test_an_unnamed_sum_is_bounded_inside_the_exp(variant) -> None:
    """No name for the sum: the clamp goes inside the exp, on the line that already reads the
    residual (a new line before it might read it where it is not assigned)."""
    repo = variant("exp_inline")
    before = (repo / TRAINER).read_text(encoding="utf-8")
    assert hdrfix("apply", "bound", "--repo", repo).code == 0
    exp = "prediction = torch.exp(log_img + delta_log) - eps"
    bounded = (
        "prediction = torch.exp(torch.clamp(log_img + delta_log, max=self.log_output_max)) - eps"
    )
    check_transformed(
        before,
        (repo / TRAINER).read_text(encoding="utf-8"),
        TRAINER,
        [
            edit(
                "PatchTrainingFramework.__init__",
                "self.log_supervision_huber_delta = "
                "float(norm_cfg.get('log_supervision_huber_delta', 0.2))",
                added=[f"self.log_output_max = float(norm_cfg.get('log_output_max', {LOG_MAX}))"],
            ),
            edit(
                "PatchTrainingFramework.training_step",
                "delta_log = delta_log * mask_weight",
                removed=[exp],
                added=[bounded],
            ),
            edit(
                "PatchTrainingFramework.validation_step",
                "    delta_log = (self.log_delta_scale * denom) * torch.tanh(residual_pred_log)"
                " * scale",
                removed=[exp],
                added=[bounded],
            ),
        ],
    )
    assert bounds_per_exp(repo, TRAINER) == [1, 1]


@pytest.mark.parametrize(
    ("name", "rel", "include"),
    [
        ("crlf", TRAINER, ()),
        ("exp_inline", TRAINER, ()),
        ("helper_method", TRAINER, ()),
        ("multiline", TRAINER, ()),
        ("one_line_if", TRAINER, ()),
        ("field_helper_tuple", TRAINER, ()),
        ("field_hand_clamped_branches", TRAINER, ()),
        ("field_no_scale", TRAINER, ()),
        ("field_predict_step", TRAINER, ()),
        (
            "inference_module",
            "src/npu/deploy/export.py",
            ("src/npu/deploy/export.py", "tools/inspect_residuals.py"),
        ),
    ],
)
def test_variants(name: str, rel: str, include: tuple[str, ...], variant) -> None:
    repo = variant(name)
    args = [a for path in include for a in ("--include", repo / path)]
    first = hdrfix("apply", "bound", "--repo", repo, *args)
    assert first.code == 0, first.err
    files = [TRAINER, *include]
    assert all(set(bounds_per_exp(repo, f)) == {1} for f in files)
    applied = snapshot(repo)
    for f in files:
        compile(applied[f], f, "exec")
    trainer = applied[TRAINER]
    sites = {"helper_method": 1, "field_predict_step": 3}
    assert trainer.count(b"max=self.log_output_max)") == sites.get(name, 2)
    if name == "crlf":
        assert trainer.count(b"\n") == trainer.count(b"\r\n")
    if include:
        assert LOG_MAX.encode() + b")" in applied[rel]
    assert hdrfix("apply", "bound", "--repo", repo, *args, "--check").code == 0


# --- the patched fixture, run -----------------------------------------------------------------


def _step(trainer, config, batch, *, steps=1, seed=0):
    """Train ``steps`` steps on ``batch(i)``; yield the raw branch tensors after each."""
    import torch

    from hdrfix.validate.fixture import build_trainer

    torch.manual_seed(seed)
    model = build_trainer(trainer, config)
    optimiser = model.configure_optimizers()
    for i in range(steps):
        yield model, train_step(model, optimiser, batch(i), i)


@pytest.mark.usefixtures("one_thread")
def test_bounded_ln_hat_equals_hdrfix_nn(framework: Path) -> None:
    torch = pytest.importorskip("torch")
    import hdrfix.nn as hnn
    from hdrfix.validate.fixture import build_trainer
    from hdrfix.validate.synth import make_field_batch

    assert hdrfix("apply", "bound", "--repo", framework).code == 0
    batch = make_field_batch(2, 32, 48, seed=0)
    with imported(framework, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(framework / CONFIG)
        torch.manual_seed(0)
        model = build_trainer(trainer, config)
        with torch.no_grad():
            model.patch_network.output_conv.bias.fill_(1.0)  # a net that lifts every pixel
            model.training_step(batch, 0)
    branch = model.last_log_branch
    log_img = hnn.log_normalize(batch["patch_input"][:, :3], model.log_epsilon).log_img
    expected = hnn.bound_log_output(log_img + branch["delta_log"])
    torch.testing.assert_close(branch["Ln_hat"], expected, rtol=0, atol=1e-6)
    assert float(branch["Ln_hat"].max()) == float(LOG_MAX)  # the clamp is active
    assert float(branch["prediction"].max()) <= HALF_MAX


@pytest.mark.usefixtures("one_thread")
def test_bounded_fixture_trains_without_overflow(framework: Path, tmp_path: Path) -> None:
    """The seed and data on which the untouched fixture overflows (test_fixture_trains)."""
    import torch

    from hdrfix.validate.synth import SyntheticHDR

    stream = SyntheticHDR(48, 64, seed=0, batch_size=2)
    untouched = snapshot(framework)
    with imported(framework, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(framework / CONFIG)
        model, _ = next(_step(trainer, config, stream.field_batch))
        raw = model.last_log_branch["prediction"]
        assert int((~torch.isfinite(raw) | (raw > HALF_MAX)).sum()) > 0

    assert hdrfix("apply", "bound", "--repo", framework).code == 0
    assert snapshot(framework) != untouched
    highest = 0.0
    with imported(framework, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(framework / CONFIG)
        for model, out in _step(trainer, config, stream.field_batch, steps=24):
            prediction = model.last_log_branch["prediction"]
            assert bool(torch.isfinite(prediction).all()) and bool(torch.isfinite(out["loss"]))
            assert int((prediction > HALF_MAX).sum()) == 0
            highest = max(highest, float(prediction.max()))
    assert highest > 0.99 * HALF_MAX  # the bound was reached, not merely never needed
