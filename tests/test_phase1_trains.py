"""The framework patched by phase1 still trains, and its residual never leaves [-8, 8]."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import hdrfix, imported

torch = pytest.importorskip("torch")

from hdrfix.synth import SyntheticHDR


def test_patched_fixture_trains_with_bounded_residual(framework: Path) -> None:
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    with imported(framework, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(framework / "configs/colleague_training_config.yaml")
        assert config["normalization"]["log_delta_abs_max"] == 6.0
        torch.manual_seed(0)
        model = trainer.PatchTrainingFramework(config)
        optimiser = model.configure_optimizers()
        largest = 0.0
        for step, batch in zip(range(30), SyntheticHDR(48, 64, seed=0, batch_size=2)):
            out = model.training_step(batch, step)
            optimiser.zero_grad()
            out["loss"].backward()
            optimiser.step()
            branch = model.last_log_branch
            largest = max(largest, float(branch["delta_log"].abs().max()))
            assert torch.isfinite(out["loss"])
            assert torch.isfinite(out["prediction"]).all()
        assert 0.0 < largest <= 8.0
        metrics = model.validation_step(batch, 0)
        assert float(model.last_log_branch["delta_log"].abs().max()) <= 8.0
        assert all(torch.isfinite(torch.tensor(float(v))) for v in metrics.values())


def test_clamp_bounds_mode_b_which_the_cap_does_not(framework: Path) -> None:
    """Mode B scales by the patch's log range (up to ~25): only the clamp keeps it within 8."""
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    with imported(framework, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(framework / "configs/colleague_training_config.yaml")
        config["normalization"]["log_delta_abs_max"] = 0.0  # Mode B
        config["normalization"]["restrict_residual_to_holes"] = False
        torch.manual_seed(0)
        model = trainer.PatchTrainingFramework(config)
        with torch.no_grad():
            model.patch_network.output_conv.bias.fill_(3.0)  # tanh saturates: 0.9 * denom
            model.training_step(next(iter(SyntheticHDR(32, 32, seed=1, batch_size=2))), 0)
        delta = model.last_log_branch["delta_log"]
        assert float(delta.abs().max()) == 8.0
