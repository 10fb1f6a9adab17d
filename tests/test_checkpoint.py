"""migrate-checkpoint: old checkpoints gain residual_output_scale and load with strict=True."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FRAMEWORK, imported

torch = pytest.importorskip("torch")

from hdrfix.lang.errors import HdrfixError
from hdrfix_plugins.phase2.checkpoint import NETWORK_KEYS, migrate_checkpoint, report_lines

CONFIG = FRAMEWORK / "configs" / "colleague_training_config.yaml"
PARAM = "residual_output_scale"


@pytest.fixture(scope="module")
def network_class():
    """The fixture's PatchNetwork, and the same network as phase2 leaves it."""
    with imported(FRAMEWORK, "src.npu.networks.patch.patch_network") as (module,):

        class Patched(module.PatchNetwork):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.residual_output_scale = torch.nn.Parameter(torch.tensor([6.0]))

        yield module.PatchNetwork, Patched


def _net_state(network_class, prefix: str = "", dtype=torch.float32) -> dict:
    torch.manual_seed(0)
    net = network_class[0](input_channels=7, output_channels=3, base_channels=4).to(dtype)
    return {prefix + k: v for k, v in net.state_dict().items()}


def test_network_keys_are_the_fixture_networks(network_class) -> None:
    assert tuple(network_class[0]().state_dict()) == NETWORK_KEYS


def test_plain_state_dict_loads_strictly_after_migration(tmp_path: Path, network_class) -> None:
    src, dest = tmp_path / "net.pt", tmp_path / "net_phase2.pt"
    torch.save(_net_state(network_class), src)
    report = migrate_checkpoint(src, dest, config=None, scale_init=None)
    assert report.layout == "state_dict" and report.prefixes == ("",)
    assert report.added == (PARAM,) and report.value == 6.0
    net = network_class[1](input_channels=7, output_channels=3, base_channels=4)
    net.load_state_dict(torch.load(dest, weights_only=True), strict=True)
    assert float(net.residual_output_scale.detach()) == 6.0
    with pytest.raises(RuntimeError, match=PARAM):
        net.load_state_dict(torch.load(src, weights_only=True), strict=True)


def test_lightning_checkpoint_keeps_its_other_entries(tmp_path: Path, network_class) -> None:
    state = _net_state(network_class, "student_model.patch_network.")
    state.update(_net_state(network_class, "teacher.patch_network.", torch.float16))
    state["student_model.proj.weight"] = torch.ones(2, 2)
    checkpoint = {
        "epoch": 7,
        "global_step": 1400,
        "state_dict": state,
        "hyper_parameters": {"lr": 2e-3},
        "optimizer_states": [{"state": {}}],
    }
    src, dest = tmp_path / "last.ckpt", tmp_path / "last_phase2.ckpt"
    torch.save(checkpoint, src)
    report = migrate_checkpoint(src, dest, config=CONFIG, scale_init=None, weights_only=True)
    assert report.layout == "lightning" and report.optimizer == ()
    assert report.prefixes == ("student_model.patch_network.", "teacher.patch_network.")
    assert report.value == pytest.approx(1.2 * 16.0)  # the unmigrated config: alpha x abs_max
    assert set(report.kept) == {"epoch", "global_step", "hyper_parameters", "optimizer_states"}
    out = torch.load(dest, weights_only=True)
    assert {k: out[k] for k in report.kept} == {k: checkpoint[k] for k in report.kept}
    new = out["state_dict"]
    assert set(new) - set(state) == {
        f"student_model.patch_network.{PARAM}",
        f"teacher.patch_network.{PARAM}",
    }
    assert new[f"teacher.patch_network.{PARAM}"].dtype == torch.float16
    torch.testing.assert_close(new[f"student_model.patch_network.{PARAM}"], torch.tensor([19.2]))
    assert all(torch.equal(new[k], v) for k, v in state.items())


def test_scale_init_overrides_and_present_keys_stay(tmp_path: Path, network_class) -> None:
    state = _net_state(network_class, "patch_network.")
    state[f"patch_network.{PARAM}"] = torch.tensor([3.0])
    state.update(_net_state(network_class, "ema.patch_network."))
    src, dest = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save(state, src)
    lines = report_lines(migrate_checkpoint(src, dest, config=None, scale_init=2.5))
    out = torch.load(dest, weights_only=True)
    assert float(out[f"patch_network.{PARAM}"]) == 3.0
    assert float(out[f"ema.patch_network.{PARAM}"]) == 2.5
    assert lines[0] == f"{src} -> {dest} (state_dict, 2 PatchNetwork(s))"
    assert f"  added   ema.patch_network.{PARAM} = [2.5]" in lines
    assert f"  present patch_network.{PARAM} (left as it was)" in lines


def _refused(src: Path, dest: Path, match: str, **kwargs) -> None:
    folder = sorted(p.name for p in dest.parent.iterdir())
    with pytest.raises(HdrfixError, match=match) as info:
        migrate_checkpoint(
            src, dest, config=kwargs.get("config"), scale_init=kwargs.get("scale_init")
        )
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in dest.parent.iterdir()) == folder  # nothing written


def test_refuses_to_overwrite(tmp_path: Path, network_class) -> None:
    src = tmp_path / "net.pt"
    torch.save(_net_state(network_class), src)
    raw = src.read_bytes()
    _refused(src, src, "overwrite the input")
    other = tmp_path / "other.pt"
    other.write_bytes(b"keep me")
    _refused(src, other, "already exists")
    assert src.read_bytes() == raw and other.read_bytes() == b"keep me"


class Opaque:
    """A custom class: weights_only loading refuses to unpickle it."""


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (["not", "a", "dict"], "unknown checkpoint layout"),
        ({"encoder.weight": torch.zeros(1)}, "no PatchNetwork found"),
        ({"state_dict": {"x": Opaque()}}, r"refuses it: it holds a test_checkpoint\.Opaque object"),
        (b"plain text, not a checkpoint", "not a PyTorch checkpoint"),
    ],
)
def test_bad_checkpoints_write_nothing(tmp_path: Path, payload, match: str) -> None:
    src = tmp_path / "in.pt"
    if isinstance(payload, bytes):
        src.write_bytes(payload)
    else:
        torch.save(payload, src)
    _refused(src, tmp_path / "out.pt", match)


def test_bad_config_and_scale(tmp_path: Path, network_class) -> None:
    src = tmp_path / "net.pt"
    torch.save(_net_state(network_class), src)
    config = tmp_path / "c.yaml"
    config.write_text("normalization:\n  log_delta_abs_max: 0.0\n  log_delta_alpha: 1.0\n")
    _refused(src, tmp_path / "out.pt", "Mode B", config=config)
    config.write_text("normalization:\n  log_delta_alpha: 1.0\n")
    _refused(src, tmp_path / "out.pt", "log_delta_abs_max", config=config)
    _refused(
        src, tmp_path / "out.pt", "--scale-init must be a finite number above 0", scale_init=-1.0
    )


def test_module_does_not_import_torch_at_import_time() -> None:
    code = "import sys, hdrfix_plugins.phase2.checkpoint; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_cli(tmp_path: Path, network_class) -> None:
    from conftest import hdrfix

    src, dest = tmp_path / "last.ckpt", tmp_path / "migrated.ckpt"
    torch.save({"epoch": 1, "state_dict": _net_state(network_class, "patch_network.")}, src)
    result = hdrfix("migrate-checkpoint", src, dest, "--config", CONFIG)
    assert result.code == 0, result.err
    assert f"  added   patch_network.{PARAM} = [19.2]" in result.out.splitlines()
    again = hdrfix("migrate-checkpoint", src, dest)
    assert again.code == 2 and again.err.count("\n") == 1 and "already exists" in again.err
