"""The untouched framework replica has the field trainer's shape (docs/design.md §2.1), trains on
synthetic HDR data in every normalization mode, and overflows like the field."""

from __future__ import annotations

import ast
import copy
import importlib.util
import itertools
import math
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from conftest import FRAMEWORK, imported
from fielddata import train_step

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is fastest

from hdrfix.validate.fixture import TRAINER_CLASS, build_trainer
from hdrfix.validate.synth import (
    FIELD_CHANNELS,
    SyntheticHDR,
    field_batch,
    make_batch,
    make_field_batch,
)

CONFIG = FRAMEWORK / "configs" / "colleague_training_config.yaml"
PRESET = FRAMEWORK / "configs" / "presets" / "fast_test.yaml"
TRAINER = FRAMEWORK / "train" / "patch_training_framework.py"
NETWORK = FRAMEWORK / "src" / "npu" / "networks" / "patch" / "patch_network.py"
HALF_MAX = 65504.0
#: Every arm of the trainer's dispatch; 'none' stands for the final `else`.
MODES = ("log", "global", "per_patch", "none")
FIXTURE_MODULES = (
    "train.patch_training_framework",
    "src.npu.networks.patch.patch_network",
    "src.npu.networks.patch_inpainting",
)


@pytest.fixture(scope="module")
def fw():
    """The fixture's modules (imported with a stub cv2, see conftest.cv2_stub), and its tools."""
    with imported(FRAMEWORK, *FIXTURE_MODULES) as (trainer, network, inpainting):
        tools = {}
        for name in ("diagnose_overflow", "oracle_residual"):
            spec = importlib.util.spec_from_file_location(
                f"_fixture_{name}", FRAMEWORK / "tools" / f"{name}.py"
            )
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            tools[name] = module
        yield types.SimpleNamespace(
            trainer=trainer,
            PatchNetwork=network.PatchNetwork,
            PatchInpainting=inpainting.PatchInpainting,
            tools=types.SimpleNamespace(**tools),
        )


def _config(fw, path: Path = CONFIG, **normalization) -> dict:
    config = copy.deepcopy(fw.trainer.load_config(path))
    config["normalization"].update(normalization)
    return config


def _model(fw, config: dict, seed: int = 0):
    torch.manual_seed(seed)
    return build_trainer(fw.trainer, config)


def _overflow_px(prediction) -> int:
    return int((~torch.isfinite(prediction) | (prediction > HALF_MAX)).sum())


# --- synthetic data in the field's format ---------------------------------------------------


def test_field_batch_layout():
    raw = make_batch(2, 20, 36, seed=1)
    batch = make_field_batch(2, 20, 36, seed=1)
    assert set(batch) == {"patch_input", "patch_target_rgb", "patch_target_residual"}
    x = batch["patch_input"]
    assert x.shape == (2, 7, 20, 36) == (2, len(FIELD_CHANNELS), 20, 36)
    assert all(v.dtype == torch.float32 for v in batch.values())
    assert torch.equal(x[:, :3], raw["warped_rgb"])
    assert torch.equal(x[:, 3:4], raw["hole_mask"])
    assert torch.equal(x[:, 4:5], raw["occlusion"])
    assert torch.equal(x[:, 5:], raw["motion"])
    assert torch.equal(batch["patch_target_rgb"], raw["target_rgb"])
    torch.testing.assert_close(batch["patch_target_residual"], raw["target_rgb"] - x[:, :3])
    # holes are exactly where the warp delivered nothing; occlusion never lies in a hole
    assert torch.equal(x[:, 3:4], (x[:, :3] == 0).all(dim=1, keepdim=True).float())
    assert float((x[:, 3:4] * x[:, 4:5]).sum()) == 0.0
    assert 0.01 < float(x[:, 3:4].mean()) < 0.5
    assert float(x[:, 4:5].sum()) > 0
    log_rad = torch.log(batch["patch_target_rgb"])
    assert float(log_rad.min()) >= -6.0 - 1e-4 and 7.0 <= float(log_rad.max()) <= 9.0 + 1e-4


def test_batches_are_deterministic():
    a, b = make_field_batch(2, 48, 64, seed=3), make_field_batch(2, 48, 64, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["patch_input"], make_field_batch(2, 48, 64, seed=4)["patch_input"])
    stream = SyntheticHDR(48, 64, seed=3, batch_size=2)
    assert torch.equal(stream.field_batch(0)["patch_input"], a["patch_input"])
    assert torch.equal(
        field_batch(stream.batch(1))["patch_input"], stream.field_batch(1)["patch_input"]
    )
    assert not torch.equal(
        stream.field_batch(1)["patch_input"], stream.field_batch(2)["patch_input"]
    )
    assert len(list(SyntheticHDR(8, 8, seed=0, batch_size=1, num_batches=3))) == 3


# --- configs --------------------------------------------------------------------------------


def test_configs_load(fw):
    config = fw.trainer.load_config(CONFIG)
    norm = config["normalization"]
    assert norm["type"] == "log"
    assert norm["log_delta_abs_max"] == 16.0 and norm["log_delta_alpha"] == 1.2
    assert norm["log_supervision_type"] == "l1" and norm["log_supervision_weight"] == 1.0
    assert norm["log_apply_delta_in_holes"] is True and norm["global_stats"]["std"] > 0
    assert config["network"] == {
        "input_channels": 7,
        "output_channels": 3,
        "base_channels": 8,
        "residual_scale_factor": 1.0,
    }
    schedule = config["loss"]["weight_schedule"]
    assert schedule["enable"] is False and (schedule["log_p1"], schedule["log_p2"]) == (0.9, 0.3)
    assert config["training"]["gradient_clip_val"] is None
    assert config["experiment"]["description"] == "warp \u2192 inpaint \u2192 HDR"
    assert config["experiment"]["resume_from"] is None and config["experiment"]["notes"] is None
    assert config["training"]["augment"] == {"flip": True, "crop": 64}

    preset = fw.trainer.load_config(PRESET)
    assert "log_supervision_weight" not in preset["normalization"]
    for section in preset.values():
        assert list(section) == sorted(section)
    assert list(preset) == sorted(preset)
    assert preset["loss"]["weight_schedule"]["enable"] is True
    dataset = fw.trainer.load_config(FRAMEWORK / "configs" / "data" / "dataset.yaml")
    assert "normalization" not in dataset

    raw = CONFIG.read_bytes()
    assert b"\r\n" not in raw and b"\\u2192" in raw and "残差上限".encode() in raw
    assert b"\n    \n" in raw and b"   \n" in raw  # whitespace-only line, trailing spaces
    assert b": ~" in raw and b": null" in raw


def test_fixture_does_not_import_hdrfix():
    for path in FRAMEWORK.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import hdrfix" not in text and "from hdrfix" not in text, path


# --- imports: the package needs OpenCV, the network file does not ----------------------------


def test_package_init_needs_opencv_and_the_network_file_does_not():
    code = (
        "import importlib.util, sys\n"
        f"sys.path.insert(0, {str(FRAMEWORK)!r})\n"
        "sys.modules['cv2'] = None  # OpenCV unimportable, installed here or not\n"
        "try:\n"
        "    from train import patch_training_framework\n"
        "except ModuleNotFoundError as exc:\n"
        "    assert exc.name == 'cv2', exc\n"
        "else:\n"
        "    raise SystemExit('the trainer imported without cv2')\n"
        f"spec = importlib.util.spec_from_file_location('net', {str(NETWORK)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert module.PatchNetwork().residual_scale_factor == 1.0\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- the trainer's structure (docs/design.md §2.1) ------------------------------------------


def _method(name: str) -> ast.FunctionDef:
    tree = ast.parse(TRAINER.read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == TRAINER_CLASS)
    return next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == name)


def _norm_chains(func: ast.FunctionDef) -> list[ast.If]:
    """The if/elif chains that dispatch on ``self.norm_type == 'global'``."""
    return [
        n
        for n in ast.walk(func)
        if isinstance(n, ast.If)
        and isinstance(n.test, ast.Compare)
        and ast.unparse(n.test) == "self.norm_type == 'global'"
    ]


def _arms(chain: ast.If) -> dict[str, list[ast.stmt]]:
    arms, node = {}, chain
    while True:
        arms[ast.literal_eval(node.test.comparators[0])] = node.body
        nested = node.orelse[0] if len(node.orelse) == 1 else None
        if isinstance(nested, ast.If) and ast.unparse(nested.test).startswith("self.norm_type =="):
            node = nested
        else:
            arms["else"] = node.orelse
            return arms


def _assigned(stmts: list[ast.stmt]) -> set[str]:
    return {
        t.id
        for s in stmts
        for n in ast.walk(s)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }


def test_trainer_has_the_field_shape():
    source = TRAINER.read_text(encoding="utf-8")
    assert "pytorch_lightning" not in source and "x5" not in NETWORK.read_text(encoding="utf-8")
    for step in ("training_step", "validation_step"):
        func = _method(step)
        first, second = _norm_chains(func)
        assert first.lineno < second.lineno
        one, two = _arms(first), _arms(second)
        assert list(one) == list(two) == ["global", "per_patch", "log", "else"]
        # delta_log exists only in the log arm
        assert "delta_log" in _assigned(one["log"])
        assert all("delta_log" not in _assigned(one[k]) for k in ("global", "per_patch", "else"))
        # the diagnostics live inside a log arm only
        where = "log arm of dispatch 2" if step == "training_step" else "log arm of dispatch 1"
        log_arm = two["log"] if step == "training_step" else one["log"]
        assert "self.last_log_branch = {" in ast.unparse(log_arm), where
        assert ast.unparse(func).count("self.last_log_branch =") == 1
        mode_a_b = [
            n
            for n in ast.walk(ast.Module(body=one["log"], type_ignores=[]))
            if isinstance(n, ast.If) and ast.unparse(n.test) == "self.log_delta_abs_max > 0.0"
        ]
        assert len(mode_a_b) == 1 and ast.unparse(mode_a_b[0]).count("* scale") == 2
    # training reconstructs in dispatch 2; validation in dispatch 1, its dispatch-2 log arm passes
    train_two = _arms(_norm_chains(_method("training_step"))[1])
    assert "torch.exp(Ln_hat) - eps" in ast.unparse(train_two["log"])
    val_one, val_two = (_arms(c) for c in _norm_chains(_method("validation_step")))
    assert "torch.exp(Ln_hat) - eps" in ast.unparse(val_one["log"])
    assert [type(s) for s in val_two["log"]] == [ast.Pass]
    assert "predict_step" not in source
    assert "self.log_sup_weight = self.weight_sched_log_p1" in source


# --- the network --------------------------------------------------------------------------


def test_network_return_paths(fw):
    torch.manual_seed(0)
    net = fw.PatchNetwork(input_channels=7, output_channels=3, base_channels=4)
    assert net.residual_scale_factor == 1.0 and isinstance(net.output_conv, torch.nn.Conv2d)
    assert [n for n, _ in net.named_children()][-1] == "output_conv"
    assert "tanh" not in NETWORK.read_text(encoding="utf-8")  # a linear output
    levels = [n for n, _ in net.named_children() if n.startswith("enc") or n == "bottleneck"]
    assert len(levels) == 5
    for h, w in [(48, 64), (23, 37)]:  # 23x37 is resized to 32x48 inside and back
        x = torch.randn(2, 7, h, w)
        residual = net(x)
        assert residual.shape == (2, 3, h, w)
        again, full = net(x, return_full_image=True)
        assert torch.equal(again, residual)
        assert torch.equal(full, x[:, :3] + residual * net.residual_scale_factor)
    # boundary_override replaces the hole channel
    assert torch.equal(net(x, boundary_override=x[:, 3:4]), residual)
    assert not torch.equal(net(x, boundary_override=torch.zeros_like(x[:, 3:4])), residual)
    half = fw.PatchNetwork(base_channels=4, residual_scale_factor=0.5)
    _, full = half(x, return_full_image=True)
    torch.testing.assert_close(full, x[:, :3] + half(x) * 0.5)
    assert fw.PatchNetwork().base_channels == 24 and fw.PatchNetwork().input_channels == 7


# --- it trains, in every mode -----------------------------------------------------------------


# Mode B (log_delta_abs_max <= 0) exists in the log arm only.
@pytest.mark.parametrize(
    ("mode", "abs_max"),
    [("log", 16.0), ("log", 0.0), *((m, 16.0) for m in MODES[1:])],
    ids=["log-mode_a", "log-mode_b", *MODES[1:]],
)
def test_trains_in_every_mode(fw, mode, abs_max):
    model = _model(fw, _config(fw, type=mode, log_delta_abs_max=abs_max))
    assert model.norm_type == mode and model.patch_network.input_channels == 7
    optimiser = model.configure_optimizers()
    before = [p.detach().clone() for p in model.parameters()]
    stream = SyntheticHDR(32, 48, seed=0, batch_size=2)
    started = time.perf_counter()
    for step in range(3):
        out = train_step(model, optimiser, stream.field_batch(step), step)
        assert math.isfinite(out["loss"].item()) and out["mode"] == mode
        assert bool(torch.isfinite(out["prediction"]).all())
        assert ("log_supervision" in out["loss_dict"]) == (mode == "log")
    elapsed = time.perf_counter() - started
    assert model.global_step == 3
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert model.logged_metrics["train/loss"] == pytest.approx(out["loss"].item())

    model.eval()
    metrics = model.validation_step(stream.field_batch(99), 0)
    assert set(metrics) == {
        "val_loss",
        "val_recon_mulaw_l1",
        "val_hole_mulaw_l1",
        "val_overflow_px",
    }
    assert all(math.isfinite(v) for v in metrics.values())
    # the raw-tensor diagnostics exist in the log mode only
    assert bool(model.last_log_branch) == (mode == "log")
    assert elapsed < 20.0


def test_empty_batch_gives_a_zero_loss(fw):
    model = _model(fw, _config(fw))
    out = model.training_step({"patch_input": torch.zeros(0, 7, 8, 8)}, 0)
    assert out["loss"].item() == 0.0 and out["loss"].requires_grad
    assert model.training_step({}, 0)["loss"].item() == 0.0


def test_log_supervision_is_added_with_its_weight(fw):
    batch = make_field_batch(2, 32, 32, seed=2)
    on = _model(fw, _config(fw))
    off = _model(fw, _config(fw, log_supervision_enable=False))
    with torch.no_grad():
        a, b = on.training_step(batch, 0), off.training_step(batch, 0)
    sup = a["loss_dict"]["log_supervision"]
    torch.testing.assert_close(a["loss"], b["loss"] + on.log_sup_weight * sup)
    assert on.log_sup_weight == 1.0 and float(sup) > 1.0  # holes sit at log(eps) = -13.8


def test_weight_schedule_overwrites_the_log_supervision_weight(fw):
    preset = fw.trainer.load_config(PRESET)
    model = _model(fw, preset)
    assert model.weight_sched_enable and model.log_sup_weight == 0.5  # the trainer default
    weights = []
    for step in range(25):
        model.training_step(make_field_batch(1, 16, 16, seed=step), step)
        weights.append(model.log_sup_weight)
    assert weights[0] == pytest.approx(0.9) and weights[-1] == pytest.approx(0.3)
    assert all(a >= b for a, b in itertools.pairwise(weights))
    # the config's log_supervision_weight is overwritten, whatever it says
    model = _model(fw, _config(fw, PRESET, log_supervision_weight=2.0))
    model.training_step(make_field_batch(1, 16, 16, seed=0), 0)
    assert model.log_sup_weight == pytest.approx(0.9)


def test_shipped_cap_overflows(fw):
    """abs_max 16 x alpha 1.2: pixels beside emissive lights blow out from the first steps, and
    the log supervision drives |delta_log| in holes past 8 within a few dozen steps."""
    model = _model(fw, _config(fw))
    optimiser = model.configure_optimizers()
    stream = SyntheticHDR(48, 64, seed=0, batch_size=2)
    overflow, largest = [], 0.0
    for step in range(60):
        out = train_step(model, optimiser, stream.field_batch(step), step)
        overflow.append(_overflow_px(model.last_log_branch["prediction"]))
        largest = max(largest, float(model.last_log_branch["delta_log"].abs().max()))
        assert math.isfinite(out["loss"].item()) and bool(torch.isfinite(out["prediction"]).all())
    assert largest > 8.0
    assert sum(v > 0 for v in overflow) >= 3


def test_a_clamp_after_the_first_dispatch_breaks_the_other_modes(fw, framework):
    """What docs/design.md §4 measured on the field trainer: a statement after the whole first chain
    that reads delta_log raises UnboundLocalError in every mode but log."""
    path = framework / "train" / "patch_training_framework.py"
    text = path.read_text(encoding="utf-8")
    anchor = (
        "            try:\n                from src.npu.utils.residual_ops import apply_residual\n"
    )
    assert text.count(anchor) == 1
    path.write_text(
        text.replace(
            anchor, "            delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)\n" + anchor
        ),
        encoding="utf-8",
    )
    # loaded from its file: `fw` holds the untouched trainer under its dotted name
    spec = importlib.util.spec_from_file_location("_fixture_misplaced_clamp", path)
    trainer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trainer)
    for mode in MODES:
        model = build_trainer(trainer, _config(fw, type=mode))
        batch = make_field_batch(1, 16, 16, seed=0)
        if mode == "log":
            assert math.isfinite(model.training_step(batch, 0)["loss"].item())
        else:
            with pytest.raises(UnboundLocalError, match="delta_log"):
                model.training_step(batch, 0)


# --- the other log-domain copies: inference module and tools --------------------------------


def _hot(model, bias: float = 1.0):
    with torch.no_grad():
        model.patch_network.output_conv.bias.fill_(bias)  # a net that learned to lift holes
    return model


@pytest.mark.parametrize("in_holes", [False, True])
@pytest.mark.parametrize("abs_max", [16.0, 0.0], ids=["mode_a", "mode_b"])
def test_inference_module_matches_validation(fw, abs_max, in_holes):
    config = _config(fw, log_delta_abs_max=abs_max, log_apply_delta_in_holes=in_holes)
    model = _hot(_model(fw, config))
    model.eval()
    batch = make_field_batch(2, 48, 64, seed=0)
    model.validation_step(batch, 0)
    norm = config["normalization"]
    settings = types.SimpleNamespace(**{k: v for k, v in norm.items() if k.startswith("log_")})
    exported = fw.PatchInpainting(settings, model.patch_network).inpaint(batch["patch_input"])
    torch.testing.assert_close(exported, model.last_log_branch["prediction"])
    if abs_max > 0.0 and not in_holes:
        assert _overflow_px(exported) > 0 and bool(torch.isfinite(exported).all())


def test_diagnose_overflow_is_mode_b(fw, capsys):
    config = _config(fw, log_delta_abs_max=0.0, log_apply_delta_in_holes=False)
    model = _hot(_model(fw, config, seed=1), 3.0)
    model.eval()
    batch = make_field_batch(2, 32, 32, seed=2)
    model.validation_step(batch, 0)
    with torch.no_grad():
        out, delta_log = fw.tools.diagnose_overflow.reconstruct(
            model.patch_network, batch["patch_input"]
        )
    torch.testing.assert_close(out, model.last_log_branch["prediction"])
    torch.testing.assert_close(delta_log, model.last_log_branch["delta_log"])
    fw.tools.diagnose_overflow.main(
        ["--config", str(CONFIG), "--batch-size", "1", "--height", "16", "--width", "16"]
    )
    out = capsys.readouterr().out
    assert "overflow_px" in out and "max_abs_delta_log" in out


def test_oracle_residual_round_trip(fw):
    batch = make_field_batch(2, 32, 32, seed=3)
    recon, _ = fw.tools.oracle_residual.oracle_reconstruction(
        batch["patch_input"], batch["patch_target_rgb"]
    )
    torch.testing.assert_close(recon, batch["patch_target_rgb"], rtol=1e-4, atol=1e-4)
    report = fw.tools.oracle_residual.residual_report(
        batch["patch_input"], batch["patch_target_rgb"]
    )
    assert report["hole_mean_gt_delta_log"] > 8.0 and 0 < report["share_beyond_bound"] < 0.5


# --- the field-shaped variants (fixtures/variants/field_*) ----------------------------------

FIELD_VARIANTS = (
    "field_helper_tuple",
    "field_hand_clamped_branches",
    "field_predict_step",
    "field_no_scale",
    "field_tiles",
    "field_gt_in_steps",
)


def _variant_trainer(name: str):
    """A variant's trainer, loaded from its file; its PatchNetwork is the fixture's (``fw``)."""
    path = FRAMEWORK.parent / "variants" / name / "train" / "patch_training_framework.py"
    spec = importlib.util.spec_from_file_location(f"_fixture_variant_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FIELD_VARIANTS)
def test_field_variants_train_in_every_mode(fw, name, mode):
    trainer, path = _variant_trainer(name)
    config = trainer.load_config(path.parents[1] / "configs" / "colleague_training_config.yaml")
    stream = SyntheticHDR(32, 32, seed=1, batch_size=2)
    for abs_max in (16.0, 0.0) if mode == "log" else (16.0,):
        cfg = copy.deepcopy(config)
        cfg["normalization"].update(type=mode, log_delta_abs_max=abs_max)
        torch.manual_seed(0)
        model = build_trainer(trainer, cfg)
        optimiser = model.configure_optimizers()
        before = [p.detach().clone() for p in model.parameters()]
        for step in range(3):
            out = train_step(model, optimiser, stream.field_batch(step), step)
            assert math.isfinite(out["loss"].item()) and out["mode"] == mode
        assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
        model.eval()
        metrics = model.validation_step(stream.field_batch(9), 0)
        assert all(math.isfinite(v) for v in metrics.values())
        if mode == "log":
            # saturated: only the hand clamp (training, that variant) keeps |delta_log| <= 8
            _hot(model, 3.0)
            with torch.no_grad():
                model.training_step(stream.field_batch(9), 0)
            largest = float(model.last_log_branch["delta_log"].abs().max())
            assert (largest <= 8.0) == (name == "field_hand_clamped_branches"), largest
            model.validation_step(stream.field_batch(9), 0)
            assert float(model.last_log_branch["delta_log"].abs().max()) > 8.0
        if name == "field_predict_step":
            predicted = model.predict_step(stream.field_batch(9), 0)
            assert predicted["patch_pred"].shape == (2, 3, 32, 32)
            assert bool(torch.isfinite(predicted["patch_pred"]).all())


def test_field_variant_shapes():
    def source(name: str) -> str:
        return _variant_trainer(name)[1].read_text(encoding="utf-8")

    tree = ast.parse(source("field_no_scale"))
    assert "scale" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    helper = source("field_helper_tuple")
    assert "        return delta_log, log_img\n" in helper
    assert helper.count("delta_log, log_img = self._predict_log_residual(") == 2
    assert helper.count("torch.exp(log_img + delta_log) - eps") == 2
    clamped = source("field_hand_clamped_branches")
    assert clamped.count("delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)") == 2
    assert "def predict_step(" in source("field_predict_step")
