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
