"""The framework patched by phase1 still trains in every normalization mode, and its log
residual never leaves [-8, 8]."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
from conftest import hdrfix, imported
from fielddata import CONFIG, train_step

torch = pytest.importorskip("torch")

from hdrfix.validate.fixture import build_trainer
from hdrfix.validate.synth import SyntheticHDR


def test_patched_fixture_trains_with_bounded_residual(framework: Path) -> None:
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    with imported(framework, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(framework / CONFIG)
        assert config["normalization"]["log_delta_abs_max"] == 6.0
        torch.manual_seed(0)
        model = build_trainer(trainer, config)
        optimiser = model.configure_optimizers()
        largest = 0.0
        stream = SyntheticHDR(48, 64, seed=0, batch_size=2)
        for step in range(30):
            out = train_step(model, optimiser, stream.field_batch(step), step)
            branch = model.last_log_branch
            largest = max(largest, float(branch["delta_log"].abs().max()))
            assert torch.isfinite(out["loss"])
            assert torch.isfinite(out["prediction"]).all()
        assert 0.0 < largest <= 8.0
        model.eval()
        metrics = model.validation_step(stream.field_batch(99), 0)
        assert float(model.last_log_branch["delta_log"].abs().max()) <= 8.0
        assert all(math.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("mode", ["global", "per_patch", "none"])
def test_patched_fixture_trains_in_the_other_modes(framework: Path, mode: str) -> None:
    """delta_log exists in the log arm only: a clamp anywhere else breaks these modes with
    UnboundLocalError (docs/design.md §4)."""
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    with imported(framework, "train.patch_training_framework") as (trainer,):
        config = copy.deepcopy(trainer.load_config(framework / CONFIG))
        config["normalization"]["type"] = mode
        torch.manual_seed(0)
        model = build_trainer(trainer, config)
        optimiser = model.configure_optimizers()
        stream = SyntheticHDR(32, 32, seed=0, batch_size=2)
        for step in range(3):
            out = train_step(model, optimiser, stream.field_batch(step), step)
            assert math.isfinite(out["loss"].item())
        model.eval()
        assert all(
            math.isfinite(v) for v in model.validation_step(stream.field_batch(9), 0).values()
        )


def test_clamp_bounds_mode_b_which_the_cap_does_not(framework: Path) -> None:
    """Mode B scales by the patch's log range (up to ~25): only the clamp keeps it within 8."""
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    with imported(framework, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(framework / CONFIG)
        config["normalization"]["log_delta_abs_max"] = 0.0  # Mode B
        config["normalization"]["log_apply_delta_in_holes"] = False
        torch.manual_seed(0)
        model = build_trainer(trainer, config)
        with torch.no_grad():
            model.patch_network.output_conv.bias.fill_(3.0)  # tanh saturates: 0.9 * denom
            model.training_step(SyntheticHDR(32, 32, seed=1, batch_size=2).field_batch(0), 0)
        delta = model.last_log_branch["delta_log"]
        assert float(delta.abs().max()) == 8.0
