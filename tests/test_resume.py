"""A run stopped before phase2 resumes after it: the untouched Lightning trainer trains an epoch
and saves a checkpoint; phase1+phase2 are applied; migrate-checkpoint migrates it; the patched
trainer resumes with ``Trainer.fit(ckpt_path=...)``. The global step continues, the first loss
after resuming is the one the untouched trainer gives when it resumes from its own checkpoint
(the migrated scale reproduces the old output), and the optimizer holds the saved moments.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from conftest import FRAMEWORK, VARIANTS, copy_tree, hdrfix, imported

torch = pytest.importorskip("torch")
# found, not imported: importing Lightning (about 2 s) at collection cost every worker that
# runs none of these tests
if importlib.util.find_spec("pytorch_lightning") is None:
    pytest.skip("pytorch_lightning is not installed", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("one_thread")

TRAINER = "train.patch_training_framework"
CONFIG = "configs/colleague_training_config.yaml"
STEPS = 2  # one epoch of two batches, then one more epoch after resuming


def _seen():
    """A Lightning callback that records what the resumed run starts from: its global step,
    the optimizer's state per parameter name, and the loss of each step."""
    import pytorch_lightning as pl

    class Seen(pl.Callback):
        def __init__(self) -> None:
            self.start_step: int | None = None
            self.moments: dict[str, dict] = {}
            self.losses: list[float] = []

        def on_train_start(self, trainer, module) -> None:
            self.start_step = trainer.global_step
            optimizer = trainer.optimizers[0]
            for name, param in module.named_parameters():
                self.moments[name] = {k: v.clone() for k, v in optimizer.state[param].items()}

        def on_train_batch_end(self, trainer, module, outputs, *args) -> None:
            self.losses.append(float(outputs["loss"]))

    return Seen()


def _batches() -> list[dict]:
    from hdrfix.validate.synth import make_field_batch

    return [make_field_batch(2, 32, 32, seed=i) for i in range(STEPS)]


def _fit(
    module, config: dict, epochs: int, ckpt_path: Path | None = None, save: Path | None = None
):
    import pytorch_lightning as pl

    torch.manual_seed(0)
    config = {**config, "network": {**config["network"], "base_channels": 4}}
    model = module.PatchFrameInterpolationTrainer(
        config["network"], config["training"], None, config
    )
    seen = _seen()
    trainer = pl.Trainer(
        max_epochs=epochs, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", devices=1, callbacks=[seen],
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(_batches(), batch_size=None)
    trainer.fit(model, train_dataloaders=loader, ckpt_path=ckpt_path)
    if save is not None:
        trainer.save_checkpoint(save)
    return trainer, model, seen


def test_a_migrated_lightning_checkpoint_resumes_where_it_stopped(tmp_path):
    from ruamel.yaml import YAML

    repo = copy_tree(VARIANTS / "field_lightning", tmp_path / "repo")
    shutil.copytree(FRAMEWORK / "src", repo / "src")
    config = YAML(typ="safe").load((repo / CONFIG).read_text(encoding="utf-8"))
    # Mode A with a cap phase1's clamp (+-8) never cuts: where the old residual went past 8,
    # the patched code computes something else by design, and no migration can undo that
    config["normalization"].update(type="log", log_delta_abs_max=6.0, log_delta_alpha=1.0)
    old_ckpt, new_ckpt = tmp_path / "old.ckpt", tmp_path / "migrated.ckpt"
    with imported(repo, TRAINER) as (old,):
        first, _, _ = _fit(old, config, epochs=1, save=old_ckpt)
        assert first.global_step == STEPS
        # what the untouched trainer does when it resumes from its own checkpoint
        _, _, untouched = _fit(old, config, epochs=2, ckpt_path=old_ckpt)

    applied = hdrfix(
        "apply", "phase1", "phase2", "--repo", repo,
        "--include", "src/npu/networks/patch_inpainting.py",
    )  # fmt: skip
    assert applied.code == 0, applied.err
    migrated = hdrfix("migrate-checkpoint", old_ckpt, new_ckpt, "--config", repo / CONFIG)
    assert migrated.code == 0, migrated.err
    assert "fresh optimizer" not in migrated.out

    # the config as it was: only the code changed, so the outputs can be compared
    with imported(repo, TRAINER) as (patched,):
        assert (
            "residual_output_scale"
            in (repo / "src/npu/networks/patch/patch_network.py").read_text()
        )
        trainer, model, resumed = _fit(patched, config, epochs=2, ckpt_path=new_ckpt)

    assert resumed.start_step == STEPS and trainer.global_step == 2 * STEPS
    assert float(model.patch_network.residual_output_scale.detach()) != 0.0
    # the first step after resuming computes what the old model computed on that batch
    assert resumed.losses[0] == pytest.approx(untouched.losses[0], rel=1e-5)
    saved = torch.load(old_ckpt, weights_only=True)["optimizer_states"][0]["state"]
    names = [n for n in resumed.moments if not n.endswith("residual_output_scale")]
    assert len(names) == len(saved)
    for index, name in enumerate(names):  # one group, in parameters() order
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(resumed.moments[name][key], saved[index][key]), (name, key)
    fresh = resumed.moments["patch_network.residual_output_scale"]
    assert not fresh["exp_avg"].any() and not fresh["exp_avg_sq"].any()
    assert float(fresh["step"]) == float(saved[0]["step"])
