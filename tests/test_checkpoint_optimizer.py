"""migrate-checkpoint on a Lightning checkpoint: optimizer_states gain the new parameter where
the patched model's optimizer expects it, so the optimizer loads and keeps its moments."""

from __future__ import annotations

import pytest
from conftest import FRAMEWORK, hdrfix, imported

torch = pytest.importorskip("torch")

from hdrfix.lang.errors import HdrfixError
from hdrfix_plugins.phase2.checkpoint import migrate_checkpoint

PARAM = "residual_output_scale"


@pytest.fixture(scope="module")
def models():
    """A module holding the fixture's PatchNetwork between two other layers, before and after
    phase2 (the patched network registers the scale as its own parameter)."""
    with imported(FRAMEWORK, "src.npu.networks.patch.patch_network") as (module,):

        class Patched(module.PatchNetwork):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.residual_output_scale = torch.nn.Parameter(torch.tensor([6.0]))

        def holder(network):
            class Holder(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.stem = torch.nn.Conv2d(7, 7, 1)
                    self.norm = torch.nn.BatchNorm2d(7)  # buffers: not the optimizer's
                    self.patch_network = network(
                        input_channels=7, output_channels=3, base_channels=4
                    )
                    self.head = torch.nn.Conv2d(3, 3, 1)

                def forward(self, x):
                    return self.head(self.patch_network(self.norm(self.stem(x))))

            return Holder

        yield holder(module.PatchNetwork), holder(Patched)


def _groups(model, split: bool):
    if not split:
        return model.parameters()
    rest = [p for n, p in model.named_parameters() if not n.startswith("patch_network.")]
    return [{"params": model.patch_network.parameters(), "lr": 1e-3}, {"params": rest, "lr": 1e-4}]


def _trained_checkpoint(old_class, split: bool, prefix: str = "") -> tuple[dict, torch.nn.Module]:
    torch.manual_seed(0)
    model = old_class()
    optimizer = torch.optim.AdamW(_groups(model, split), lr=1e-3)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.rand(2, 7, 16, 16)).mean().backward()
        optimizer.step()
        schedule.step()
    state = {prefix + k: v for k, v in model.state_dict().items()}
    return {
        "global_step": 2,
        "state_dict": state,
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [schedule.state_dict()],
    }, model


@pytest.mark.parametrize("split", [False, True], ids=["one group", "two groups"])
def test_the_patched_models_optimizer_loads_the_migrated_state(tmp_path, models, split):
    old_class, new_class = models
    checkpoint, old = _trained_checkpoint(old_class, split)
    src, dest = tmp_path / "old.ckpt", tmp_path / "new.ckpt"
    torch.save(checkpoint, src)
    report = migrate_checkpoint(src, dest, config=None, scale_init=None)
    assert report.optimizer and "step 2 (the group's)" in report.optimizer[0]
    out = torch.load(dest, weights_only=True)
    assert out["lr_schedulers"] == checkpoint["lr_schedulers"]
    new = new_class()
    new.load_state_dict(out["state_dict"], strict=True)
    optimizer = torch.optim.AdamW(_groups(new, split), lr=1e-3)
    optimizer.load_state_dict(out["optimizer_states"][0])  # torch checks group sizes
    saved = torch.optim.AdamW(_groups(old, split), lr=1e-3)
    saved.load_state_dict(checkpoint["optimizer_states"][0])
    old_params = dict(old.named_parameters())
    for name, param in new.named_parameters():
        got = optimizer.state[param]
        if name == f"patch_network.{PARAM}":
            assert torch.equal(got["exp_avg"], torch.zeros(1))
            assert torch.equal(got["exp_avg_sq"], torch.zeros(1))
            assert float(got["step"]) == 2.0
            continue
        want = saved.state[old_params[name]]
        assert all(torch.equal(got[k], want[k]) for k in ("exp_avg", "exp_avg_sq", "step")), name
    assert [g["lr"] for g in optimizer.param_groups] == [
        g["lr"] for g in checkpoint["optimizer_states"][0]["param_groups"]
    ]


def test_ddp_prefixed_state_dicts_migrate(tmp_path, models):
    checkpoint, _ = _trained_checkpoint(models[0], split=False, prefix="module.")
    src, dest = tmp_path / "old.ckpt", tmp_path / "new.ckpt"
    torch.save(checkpoint, src)
    report = migrate_checkpoint(src, dest, config=None, scale_init=None)
    assert report.added == (f"module.patch_network.{PARAM}",)
    new = models[1]()
    state = torch.load(dest, weights_only=True)["state_dict"]
    new.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)


def test_an_optimizer_that_cannot_be_matched_is_refused_in_one_line(tmp_path, models):
    checkpoint, _ = _trained_checkpoint(models[0], split=True)
    groups = checkpoint["optimizer_states"][0]["param_groups"]
    groups[1]["params"].reverse()  # the layers around the network, listed head first
    src, dest = tmp_path / "old.ckpt", tmp_path / "new.ckpt"
    torch.save(checkpoint, src)
    with pytest.raises(HdrfixError, match="not in parameters\\(\\) order") as info:
        migrate_checkpoint(src, dest, config=None, scale_init=None)
    assert "--weights-only" in info.value.hint and not dest.exists()
    result = hdrfix("migrate-checkpoint", src, dest)
    assert result.code == 2 and result.err.count("\n") == 1 and not dest.exists()
    weights = hdrfix("migrate-checkpoint", src, dest, "--weights-only")
    assert weights.code == 0, weights.err
    assert "resume with a fresh optimizer" in weights.out
    out = torch.load(dest, weights_only=True)
    kept, saved = out["optimizer_states"][0], checkpoint["optimizer_states"][0]
    assert kept["param_groups"] == saved["param_groups"]
    assert kept["state"].keys() == saved["state"].keys()
    assert all(
        torch.equal(kept["state"][i]["exp_avg"], v["exp_avg"]) for i, v in saved["state"].items()
    )


def test_the_fresh_optimizer_note_is_gone_once_migrated(tmp_path, models):
    checkpoint, _ = _trained_checkpoint(models[0], split=False)
    src, dest = tmp_path / "old.ckpt", tmp_path / "new.ckpt"
    torch.save(checkpoint, src)
    result = hdrfix("migrate-checkpoint", src, dest)
    assert result.code == 0, result.err
    assert "fresh optimizer" not in result.out
    assert f"  optimizer patch_network.{PARAM}: group 0, position 4;" in result.out
