"""The untouched framework replica trains on synthetic HDR data and overflows like the field."""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from hdrfix.synth import SyntheticHDR, make_batch

FRAMEWORK = Path(__file__).resolve().parents[1] / "fixtures" / "framework"
CONFIG = FRAMEWORK / "configs" / "colleague_training_config.yaml"
HALF_MAX = 65504.0
# The fixture's top-level packages; generic names, so other code may have claimed them.
_FIXTURE_PACKAGES = ("train", "src")


def _fixture_modules() -> dict[str, object]:
    return {
        name: mod for name, mod in sys.modules.items() if name.split(".")[0] in _FIXTURE_PACKAGES
    }


@pytest.fixture(scope="module")
def fw():
    """The fixture's modules, imported from an isolated sys.path entry and forgotten after."""
    saved = _fixture_modules()
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(FRAMEWORK))
    try:
        from src.npu.deploy.patch_inference import PatchInferenceEngine
        from src.npu.networks.patch.patch_network import PatchNetwork
        from train import patch_training_framework as trainer

        spec = importlib.util.spec_from_file_location(
            "_fixture_diagnose_overflow", FRAMEWORK / "tools" / "diagnose_overflow.py"
        )
        tools = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tools)

        class Namespace:
            pass

        ns = Namespace()
        ns.trainer = trainer
        ns.PatchNetwork = PatchNetwork
        ns.PatchInferenceEngine = PatchInferenceEngine
        ns.tools = tools
        yield ns
    finally:
        sys.path.remove(str(FRAMEWORK))
        for name in _fixture_modules():
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.fixture(autouse=True)
def _two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(min(2, previous))
    yield
    torch.set_num_threads(previous)


def _overflow_px(prediction) -> int:
    return int((~torch.isfinite(prediction) | (prediction > HALF_MAX)).sum())


def _train(fw, config, batches, *, seed):
    """Run training steps; per step: loss, raw overflow pixels, max |delta_log|."""
    torch.manual_seed(seed)
    model = fw.trainer.PatchTrainingFramework(config)
    opt = model.configure_optimizers()
    history = []
    for step, batch in enumerate(batches):
        out = model.training_step(batch, step)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        branch = model.last_log_branch
        history.append(
            {
                "loss": out["loss"].item(),
                "overflow_px": _overflow_px(branch["prediction"]),
                "max_abs_delta": float(branch["delta_log"].abs().max()),
                "prediction_finite": bool(torch.isfinite(out["prediction"]).all()),
            }
        )
    return model, history


# --- synthetic data ---------------------------------------------------------------------


def test_hole_mask_is_exactly_where_warped_is_zero():
    batch = make_batch(2, 48, 64, seed=0)
    zero_everywhere = (batch["warped_rgb"] == 0).all(dim=1, keepdim=True)
    assert torch.equal(batch["hole_mask"], zero_everywhere.float())
    assert 0.01 < float(batch["hole_mask"].mean()) < 0.5
    assert bool((batch["target_rgb"] > 0).all())
    log_rad = torch.log(batch["target_rgb"])
    assert float(log_rad.min()) >= -6.0 - 1e-4
    assert 7.0 <= float(log_rad.max()) <= 9.0 + 1e-4


def test_batches_are_deterministic():
    a = make_batch(2, 48, 64, seed=3)
    b = make_batch(2, 48, 64, seed=3)
    c = make_batch(2, 48, 64, seed=4)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["target_rgb"], c["target_rgb"])

    stream = SyntheticHDR(48, 64, seed=3, batch_size=2)
    assert torch.equal(stream.batch(0)["warped_rgb"], a["warped_rgb"])
    assert torch.equal(stream.batch(1)["warped_rgb"], stream.batch(1)["warped_rgb"])
    assert not torch.equal(stream.batch(1)["warped_rgb"], stream.batch(2)["warped_rgb"])
    assert len(list(SyntheticHDR(8, 8, seed=0, batch_size=1, num_batches=3))) == 3


def test_batch_shapes():
    batch = make_batch(3, 20, 36, seed=1)
    assert batch["warped_rgb"].shape == (3, 3, 20, 36)
    assert batch["hole_mask"].shape == (3, 1, 20, 36)
    assert batch["motion"].shape == (3, 2, 20, 36)
    assert batch["target_rgb"].shape == (3, 3, 20, 36)
    assert all(v.dtype == torch.float32 for v in batch.values())


# --- the fixture ------------------------------------------------------------------------


def test_configs_load(fw):
    config = fw.trainer.load_config(CONFIG)
    norm = config["normalization"]
    assert norm["log_delta_abs_max"] == 16.0 and norm["log_delta_alpha"] == 1.2
    assert norm["log_supervision_type"] == "l1" and norm["log_supervision_weight"] == 1.0
    assert config["experiment"]["description"] == "warp \u2192 inpaint \u2192 HDR"
    assert config["experiment"]["resume_from"] is None and config["experiment"]["notes"] is None

    preset = fw.trainer.load_config(FRAMEWORK / "configs" / "presets" / "fast_test.yaml")
    assert "log_supervision_weight" not in preset["normalization"]
    assert list(preset["normalization"]) == sorted(preset["normalization"])
    dataset = fw.trainer.load_config(FRAMEWORK / "configs" / "data" / "dataset.yaml")
    assert "normalization" not in dataset

    raw = CONFIG.read_bytes()
    assert b"\r\n" not in raw and b"\\u2192" in raw
    assert b"\n    \n" in raw and b"   \n" in raw  # whitespace-only line, trailing spaces


def test_fixture_does_not_import_hdrfix():
    for path in FRAMEWORK.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import hdrfix" not in text and "from hdrfix" not in text, path


def test_network_return_paths(fw):
    torch.manual_seed(0)
    net = fw.PatchNetwork(input_channels=6, output_channels=3, base_channels=8)
    for h, w in [(48, 64), (23, 37)]:
        x = torch.randn(2, 6, h, w)
        residual = net(x)
        assert residual.shape == (2, 3, h, w)
        again, reconstructed = net(x, return_full_image=True)
        assert torch.equal(again, residual)
        assert torch.equal(reconstructed, x[:, :3] + residual)
    zero = torch.zeros(2, 1, 23, 37)
    assert torch.equal(net(x, boundary_override=zero), residual)


def test_trains_five_steps(fw):
    config = fw.trainer.load_config(CONFIG)
    batch = make_batch(2, 48, 64, seed=0)
    model, history = _train(fw, config, [batch] * 5, seed=0)

    losses = [h["loss"] for h in history]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] != losses[0]
    assert min(losses[1:]) < losses[0]
    assert all(h["prediction_finite"] for h in history)
    # the shipped cap lets emissive lights beside holes blow out from the very first steps
    assert any(h["overflow_px"] > 0 for h in history)

    metrics = model.validation_step(make_batch(2, 48, 64, seed=1), 0)
    assert {"val_loss", "val_recon_mulaw_l1", "val_hole_mulaw_l1"} <= metrics.keys()
    assert all(math.isfinite(v) for v in metrics.values())


def test_shipped_cap_overflows(fw):
    """abs_max 16 x alpha 1.2 lets |delta_log| pass 8 and the raw output pass half-float max.

    At initialisation |delta_log| stays near 19.2 * tanh(output bias) < 8; the log
    supervision then drives the residual in holes upwards within a few dozen steps.
    """
    config = fw.trainer.load_config(CONFIG)
    stream = SyntheticHDR(48, 64, seed=0, batch_size=2)
    _, history = _train(fw, config, [stream.batch(i) for i in range(60)], seed=0)

    assert max(h["max_abs_delta"] for h in history) > 8.0
    assert sum(h["overflow_px"] > 0 for h in history) >= 3
    assert all(math.isfinite(h["loss"]) for h in history)
    assert all(h["prediction_finite"] for h in history)


def _mode_a_config(fw):
    config = copy.deepcopy(fw.trainer.load_config(CONFIG))
    config["normalization"]["restrict_residual_to_holes"] = False
    return config


def test_export_and_tools_match_trainer(fw):
    config = _mode_a_config(fw)
    torch.manual_seed(0)
    model = fw.trainer.PatchTrainingFramework(config)
    with torch.no_grad():
        model.patch_network.output_conv.bias.fill_(1.0)  # a net that learned to lift holes
    batch = make_batch(2, 48, 64, seed=0)
    args = (batch["warped_rgb"], batch["hole_mask"], batch["motion"])

    with torch.no_grad():
        model.training_step(batch, 0)
    trained = model.last_log_branch

    engine = fw.PatchInferenceEngine(model.patch_network, config["normalization"])
    exported = engine.run(*args)
    with torch.no_grad():
        diagnosed, delta_log = fw.tools.reconstruct(model.patch_network, *args)

    torch.testing.assert_close(delta_log, trained["delta_log"])
    torch.testing.assert_close(exported, trained["prediction"])
    torch.testing.assert_close(diagnosed, trained["prediction"])
    assert _overflow_px(exported) == _overflow_px(trained["prediction"]) > 0
    assert float(delta_log.abs().max()) > 8.0
    assert bool(torch.isfinite(exported).all())


def test_export_matches_trainer_in_mode_b(fw):
    config = _mode_a_config(fw)
    config["normalization"]["log_delta_abs_max"] = 0.0
    torch.manual_seed(1)
    model = fw.trainer.PatchTrainingFramework(config)
    batch = make_batch(2, 48, 64, seed=2)
    with torch.no_grad():
        model.training_step(batch, 0)
    engine = fw.PatchInferenceEngine(model.patch_network, config["normalization"])
    exported = engine.run(batch["warped_rgb"], batch["hole_mask"], batch["motion"])
    torch.testing.assert_close(exported, model.last_log_branch["prediction"])


def test_diagnose_overflow_cli(fw, capsys):
    fw.tools.main(["--config", str(CONFIG), "--batch-size", "1", "--height", "16", "--width", "16"])
    out = capsys.readouterr().out
    assert "overflow_px" in out and "max_abs_delta_log" in out
