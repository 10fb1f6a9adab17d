"""The mode matrix: every phase combination, on the fixture and on each field-shaped variant,
leaves a trainer that trains (optimiser step included) and validates in every normalization
mode the untouched trainer supports, and in ``log`` mode keeps the bounds it promises even when
the network's raw output is blown up.

This is the test that would have caught the clamp placed after the whole first dispatch chain
(``UnboundLocalError`` in ``global`` and ``per_patch``): it runs the patched code, in every
mode, rather than reading its diff.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from conftest import FRAMEWORK, built_in_phases, copy_tree, hdrfix, imported
from fielddata import CONFIG

torch = pytest.importorskip("torch")

from hdrfix.validate.fixture import build_trainer
from hdrfix.validate.synth import make_field_batch

MODES = ("log", "global", "per_patch", "none")
COMBOS = (
    (),
    ("phase1",),
    ("phase1", "phase2"),
    ("phase1", "phase3"),
    ("bound",),
    built_in_phases(),  # every phase hdrfix ships, together
)
REPOS = (
    "framework",
    "field_helper_tuple",
    "field_hand_clamped_branches",
    "field_predict_step",
    "field_no_scale",
    "field_tiles",
)
CLAMP = 8.0
#: Steps that the untouched variant already clamps by hand (inside each Mode A/B branch).
HAND_CLAMPED = {("field_hand_clamped_branches", "train")}
HALF_MAX = 65504.0

pytestmark = pytest.mark.usefixtures("one_thread")


def _repo(name: str, dest: Path) -> Path:
    """A copy of the fixture or of a field variant, with the fixture's network beside it."""
    if name == "framework":
        return copy_tree(FRAMEWORK, dest)
    repo = copy_tree(FRAMEWORK.parent / "variants" / name, dest)
    if not (repo / "src").exists():
        shutil.copytree(FRAMEWORK / "src", repo / "src")
    return repo


def _outside(repo: Path) -> list[str]:
    """``--include`` for the log-domain code outside the trainer: phase2 refuses to leave it."""
    status = hdrfix("status", "--repo", repo, "--format", "json")
    others = sorted({i["path"] for p in json.loads(status.out)["phases"] for i in p["not_patched"]})
    return [a for rel in others for a in ("--include", rel)]


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """:func:`_outside` of each untouched repository, asked once per module (a status of
    every phase took a quarter of each test)."""
    known: dict[str, list[str]] = {}

    def of(name: str) -> list[str]:
        if name not in known:
            known[name] = _outside(_repo(name, tmp_path_factory.mktemp("untouched") / name))
        return known[name]

    return of


def _apply(repo: Path, combo: tuple[str, ...], include: list[str]) -> None:
    if combo:
        result = hdrfix("apply", *combo, "--repo", repo, *include)
        assert result.code == 0, result.err


def _blow_up(model) -> None:
    """Make the network's raw output huge: the residual then saturates whatever its bound."""
    with torch.no_grad():
        conv = model.patch_network.output_conv
        conv.weight.mul_(1e4)
        conv.bias.fill_(50.0)


def _run(module, config: dict, mode: str, blow_up: bool) -> dict:
    config = copy.deepcopy(config)
    config["normalization"]["type"] = mode
    torch.manual_seed(0)
    model = build_trainer(module, config)
    if blow_up:
        _blow_up(model)
    optimiser = model.configure_optimizers()
    optimiser = optimiser[0] if isinstance(optimiser, (list, tuple)) else optimiser
    optimiser = optimiser["optimizer"] if isinstance(optimiser, dict) else optimiser
    model.train()
    seen: dict = {"mode": mode}
    for step in range(2):  # the second step runs on the weights the optimiser changed
        batch = make_field_batch(2, 32, 32, seed=step)
        out = model.training_step(batch, step)
        loss = out["loss"] if isinstance(out, dict) else out
        assert torch.isfinite(loss), (mode, step)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        seen["train"] = dict(getattr(model, "last_log_branch", {}) or {})
    model.eval()
    with torch.no_grad():
        model.validation_step(make_field_batch(2, 32, 32, seed=99), 0)
        seen["val"] = dict(getattr(model, "last_log_branch", {}) or {})
        if hasattr(model, "predict_step"):
            model.predict_step(make_field_batch(2, 32, 32, seed=98), 0)
    return seen


@pytest.mark.parametrize("name", REPOS)
def test_every_combination_trains_in_every_mode(name: str, tmp_path: Path, outside) -> None:
    include = outside(name)
    for i, combo in enumerate(COMBOS):
        repo = _repo(name, tmp_path / f"c{i}")
        _apply(repo, combo, include)
        with imported(repo, "train.patch_training_framework") as (module,):
            config = module.load_config(repo / CONFIG)
            for mode in MODES:
                seen = _run(module, config, mode, blow_up=mode == "log")
                if mode != "log":
                    continue
                for where in ("train", "val"):
                    branch = seen[where]
                    assert branch, f"{name} {combo}: the {where} log arm recorded nothing"
                    delta = float(branch["delta_log"].abs().max())
                    peak = float(branch["prediction"].max())
                    if "phase1" in combo or (name, where) in HAND_CLAMPED:
                        assert delta <= CLAMP + 1e-5, (name, combo, where, delta)
                    else:
                        assert delta > CLAMP, (name, combo, where, delta)  # it could fail
                    if "bound" in combo:
                        assert peak <= HALF_MAX, (name, combo, where, peak)
                    elif "phase1" not in combo and (name, where) not in HAND_CLAMPED:
                        assert peak > HALF_MAX, (name, combo, where, peak)


@pytest.mark.parametrize("name", ["framework", "field_helper_tuple", "field_no_scale"])
def test_training_and_validation_agree_after_phase2(name: str, tmp_path: Path, outside) -> None:
    """With the same weights and batch, both steps compute the same delta_log."""
    repo = _repo(name, tmp_path / "repo")
    _apply(repo, ("phase1", "phase2"), outside(name))
    with imported(repo, "train.patch_training_framework") as (module,):
        config = copy.deepcopy(module.load_config(repo / CONFIG))
        config["normalization"]["type"] = "log"
        torch.manual_seed(0)
        model = build_trainer(module, config)
        with torch.no_grad():
            model.patch_network.residual_output_scale.fill_(3.0)  # not alpha * abs_max
        batch = make_field_batch(2, 32, 32, seed=3)
        model.eval()  # no dither, the same network path in both steps
        with torch.no_grad():
            model.training_step(batch, 0)
            trained = model.last_log_branch["delta_log"].clone()
            model.validation_step(batch, 0)
            validated = model.last_log_branch["delta_log"]
    assert torch.allclose(trained, validated, atol=1e-6)
    assert float(trained.abs().max()) > 0
