"""phase2 on shapes of the field's kind: where the edit goes, and that the patched code runs.

Each shape is a fixture variant (``fixtures/variants``, see its README) or a snippet: the cap
read from a settings object inside an inference module, a network returning its residual as
the second element of a tuple or as a list of per-level residuals, an ``__init__`` that returns
early, Mode A written with ``x.tanh()``. Each patched repository is imported and run: the small
shared-shape trainers in Mode A and Mode B (their only normalization), the field-shaped one in
every mode.
"""

from __future__ import annotations

import copy
import math
import shutil
import textwrap
import types
from pathlib import Path

import libcst as cst
import pytest
from conftest import FRAMEWORK, VARIANTS, copy_tree, hdrfix, imported, snapshot
from fielddata import CONFIG, train_step

from hdrfix_plugins.phase2.network import Unrecognised, add_scale_parameter, bound_forward

NETWORK = "src/npu/networks/patch/patch_network.py"
INFERENCE = "src/npu/networks/patch_inpainting.py"
TRAINER = "train/patch_training_framework.py"
SCALED_MODE_A = "delta_log = residual_pred_log * scale"


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def applied(repo: Path, *phases_and_options: str | Path) -> str:
    """Apply, which must succeed; then ``--check`` is 0, a second apply writes nothing, and a
    revert restores every byte (re-applied afterwards, so the caller sees the patched tree)."""
    before = snapshot(repo)
    result = hdrfix("apply", *phases_and_options, "--repo", repo)
    assert result.code == 0, result.err
    patched = snapshot(repo)
    assert hdrfix("apply", "--check", *phases_and_options, "--repo", repo).code == 0
    assert hdrfix("apply", *phases_and_options, "--repo", repo).code == 0
    assert snapshot(repo) == patched
    assert hdrfix("revert", "--repo", repo).code == 0
    assert {k: v for k, v in snapshot(repo).items() if not k.startswith(".hdrfix")} == {
        k: v for k, v in before.items() if not k.startswith(".hdrfix")
    }
    assert hdrfix("apply", *phases_and_options, "--repo", repo).code == 0
    return result.err


def _small_modes(repo: Path, torch) -> dict[str, float]:
    """Train the small (shared-shape) trainer of ``repo`` 2 steps and validate it, in Mode A
    and Mode B; per mode, the largest |residual| (the last element, where the network hands
    out several) with its output blown up."""
    from hdrfix.lang import yamledit
    from hdrfix.validate.synth import make_batch

    config = yamledit.load((repo / CONFIG).read_text(encoding="utf-8"), CONFIG)
    largest = {}
    with imported(repo, "train.patch_training_framework") as (trainer,):
        for mode, abs_max in (("mode_a", 6.0), ("mode_b", 0.0)):
            cfg = copy.deepcopy(config)
            cfg["normalization"]["log_delta_abs_max"] = abs_max
            torch.manual_seed(0)
            model = trainer.PatchTrainingFramework(cfg)
            optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
            before = [p.detach().clone() for p in model.parameters()]
            for step in range(2):
                out = train_step(model, optimiser, make_batch(2, 16, 16, seed=step), step)
                assert math.isfinite(out["loss"].item()), mode
            if mode == "mode_a":  # (Mode B saturates phase1's clamp in these holes: no gradient)
                assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
            metrics = model.validation_step(make_batch(2, 16, 16, seed=9), 0)
            assert math.isfinite(metrics["val_loss"]), mode
            for module in model.patch_network.modules():
                if isinstance(module, torch.nn.Conv2d):
                    with torch.no_grad():
                        module.bias.fill_(1e4)
            with torch.no_grad():
                x = torch.randn(2, 4, 16, 16)
                out = model.patch_network(x)
            tensors = out if isinstance(out, (list, tuple)) else [out]
            largest[mode] = max(float(t.abs().max()) for t in tensors[-1:])
    return largest


# -- a list of per-level residuals ----------------------------------------------------------------


def test_a_list_of_level_residuals_is_bounded_per_element(variant, torch) -> None:
    repo = variant("net_level_list")
    applied(repo, "phase1", "phase2")
    network = (repo / NETWORK).read_text()
    bound = (
        "        residuals = [torch.tanh(level) * self.residual_output_scale "
        "for level in residuals]\n"
    )
    # once, after the loop that fills the list and before the return
    assert network.count(bound) == 1
    assert (
        network.index("residuals.append(")
        < network.index(bound)
        < network.index("return residuals")
    )
    assert "torch.tanh(residuals)" not in network
    assert (repo / TRAINER).read_text().count(SCALED_MODE_A) == 2
    largest = _small_modes(repo, torch)
    assert all(v <= 6.0 + 1e-4 for v in largest.values()), largest


def test_a_returned_list_display_gets_the_bound_on_each_element() -> None:
    source = textwrap.dedent(
        """\
        def forward(self, x):
            f = self.body(x)
            return [self.coarse(f), self.fine(f)]
        """
    )
    fn = cst.parse_module(source).body[0]
    assert isinstance(fn, cst.FunctionDef)
    out = cst.Module([bound_forward(fn, "torch").edit.apply(fn)]).code
    assert (
        "return [torch.tanh(self.coarse(f)) * self.residual_output_scale, "
        "torch.tanh(self.fine(f)) * self.residual_output_scale]"
    ) in out


# -- a tuple whose residual is not the first element; an __init__ that returns early -------------


def test_the_element_the_callers_use_is_bounded_and_the_parameter_precedes_the_return(
    variant, torch
) -> None:
    repo = variant("net_aux_first")
    applied(repo, "phase1", "phase2")
    network = (repo / NETWORK).read_text()
    assert network.count("residual = torch.tanh(residual) * self.residual_output_scale\n") == 1
    assert "tanh(features)" not in network  # the auxiliary element is left alone
    param = "self.residual_output_scale = nn.Parameter(torch.tensor([6.0]))"
    assert network.count(param) == 1
    assert network.index(param) < network.index("if not freeze_encoder:")
    assert network.index("self.output_conv = ") < network.index(param)
    largest = _small_modes(repo, torch)  # builds the network with freeze_encoder=False
    assert all(v <= 6.0 + 1e-4 for v in largest.values()), largest


@pytest.mark.parametrize(
    ("first", "returning"),
    [("", 0), ('self.name = "net"\n', 1)],
    ids=["returns-first", "returns-before-the-module-init"],
)
def test_an_init_that_returns_before_it_can_register_is_refused_with_the_statement(
    first: str, returning: int
) -> None:
    """No place before the return is after ``super().__init__()``: refused, naming it."""
    body = f"{first}if cfg is None:\n    return\nsuper().__init__()\n"
    source = "def __init__(self, cfg):\n" + textwrap.indent(body, "    ")
    fn = cst.parse_module(source).body[0]
    assert isinstance(fn, cst.FunctionDef)
    with pytest.raises(Unrecognised) as caught:
        add_scale_parameter(fn, "torch", "nn", 6.0)
    assert caught.value.node is fn.body.body[returning]
    why = caught.value.why
    assert "`self.residual_output_scale = nn.Parameter(torch.tensor([6.0]))`" in why
    assert "after `super().__init__()` and before that return" in why


# -- Mode A with the method form of tanh ----------------------------------------------------------


def test_mode_a_with_tanh_as_a_method_is_rewritten(variant, torch) -> None:
    repo = variant("mode_a_method_tanh")
    applied(repo, "phase1", "phase2")
    trainer = (repo / TRAINER).read_text()
    assert trainer.count(SCALED_MODE_A) == 2 and ".tanh()" not in trainer
    assert trainer.count("(self.log_delta_scale * denom) * torch.tanh(residual_pred_log)") == 2
    _small_modes(repo, torch)


# -- an inference module that reads the cap from its settings ------------------------------------


@pytest.fixture
def inference_repo(tmp_path: Path) -> Path:
    """The main fixture with the inference module of ``inference_config_cap``."""
    repo = copy_tree(FRAMEWORK, tmp_path / "framework")
    shutil.copy(VARIANTS / "inference_config_cap" / INFERENCE, repo / INFERENCE)
    return repo


def test_inference_mode_a_read_through_the_settings_is_rewritten(inference_repo: Path) -> None:
    applied(inference_repo, "phase1", "phase2", "--include", inference_repo / INFERENCE)
    text = (inference_repo / INFERENCE).read_text()
    # the cap (alpha local, float(...) of the settings) and the tanh go; `* scale` stays
    assert "                delta_log = chunk_residual * scale\n" in text
    assert "* float(self.config.log_delta_abs_max)" not in text
    assert "beta * denom * torch.tanh(chunk_residual) * scale" in text  # Mode B kept
    assert text.count("delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)") == 1


def test_a_kept_factor_that_another_assignment_can_rebind_is_noted(inference_repo: Path) -> None:
    dry = hdrfix(
        "apply", "phase1", "phase2", "--include", inference_repo / INFERENCE, "--dry-run",
        "--repo", inference_repo,
    )  # fmt: skip
    assert dry.code == 0, dry.err
    notes = [line for line in dry.err.splitlines() if "Mode A keeps the factor `scale`" in line]
    assert len(notes) == 1, dry.err
    # both values `scale` can hold there: the network's factor, and the dither's strength
    assert "residual_scale_factor" in notes[0] and "log_input_dither" in notes[0]
    assert INFERENCE in notes[0]
    # the training step's `scale` has one definition: no note for it
    assert TRAINER not in "".join(line for line in dry.err.splitlines() if "keeps" in line)


@pytest.mark.parametrize("abs_max", [6.0, 0.0], ids=["mode_a", "mode_b"])
def test_inference_and_training_agree_on_delta_log_after_phase2(
    inference_repo: Path, torch, abs_max: float
) -> None:
    from hdrfix.validate.fixture import build_trainer
    from hdrfix.validate.synth import make_field_batch

    applied(inference_repo, "phase1", "phase2", "--include", inference_repo / INFERENCE)
    modules = ("train.patch_training_framework", "src.npu.networks.patch_inpainting")
    with imported(inference_repo, *modules) as (trainer, inpainting):
        config = trainer.load_config(inference_repo / CONFIG)
        config["network"]["residual_scale_factor"] = 0.75  # so that a dropped `* scale` shows
        config["normalization"].update(log_delta_abs_max=abs_max, log_apply_delta_in_holes=True)
        torch.manual_seed(0)
        model = build_trainer(trainer, config).eval()
        with torch.no_grad():
            model.patch_network.output_conv.bias.fill_(0.5)
            model.patch_network.residual_output_scale.fill_(2.5)
        batch = make_field_batch(2, 24, 32, seed=3)
        with torch.no_grad():
            model.training_step(batch, 0)
        trained = model.last_log_branch["delta_log"]
        norm = config["normalization"]
        settings = types.SimpleNamespace(**{k: v for k, v in norm.items() if k.startswith("log_")})
        exported = inpainting.PatchInpainting(settings, model.patch_network)
        exported.inpaint(batch["patch_input"])
        torch.testing.assert_close(exported.last_delta_log, trained, rtol=0, atol=1e-6)
        assert float(trained.abs().max()) > 0.1  # a residual that is there, not zeros


#: Every normalization mode of the field-shaped trainer, log in Mode A and Mode B.
EVERY_MODE = pytest.mark.parametrize(
    ("mode", "abs_max"),
    [("log", 6.0), ("log", 0.0), ("global", 6.0), ("per_patch", 6.0), ("none", 6.0)],
    ids=["log-mode_a", "log-mode_b", "global", "per_patch", "none"],
)


def trains_in(repo: Path, mode: str, abs_max: float) -> None:
    """The field-shaped trainer of ``repo``: 2 optimisation steps and a validation step in
    ``mode``, every loss and metric finite."""
    torch = pytest.importorskip("torch")
    from hdrfix.validate.fixture import build_trainer
    from hdrfix.validate.synth import SyntheticHDR

    with imported(repo, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(repo / CONFIG)
        config["normalization"].update(type=mode, log_delta_abs_max=abs_max)
        torch.manual_seed(0)
        model = build_trainer(trainer, config)
        optimiser = model.configure_optimizers()
        stream = SyntheticHDR(16, 16, seed=0, batch_size=2)
        for step in range(2):
            out = train_step(model, optimiser, stream.field_batch(step), step)
            assert math.isfinite(out["loss"].item()) and out["mode"] == mode
        model.eval()
        metrics = model.validation_step(stream.field_batch(9), 0)
        assert all(math.isfinite(v) for v in metrics.values())


@EVERY_MODE
def test_the_patched_field_shaped_trainer_trains_in_every_mode(
    inference_repo: Path, mode: str, abs_max: float
) -> None:
    applied(inference_repo, "phase1", "phase2", "--include", inference_repo / INFERENCE)
    trains_in(inference_repo, mode, abs_max)


# -- an internal check that fails names the statement ----------------------------------------------


def test_an_edit_that_does_not_complete_its_site_names_the_statement(framework: Path) -> None:
    """A patcher whose edit leaves Mode A in place: the refusal quotes the rewritten line."""
    from hdrfix.core.plugin import PhasePlan
    from hdrfix.core.repo import Repo
    from hdrfix.kit.sitepatch import plan_sites
    from hdrfix.lang.cst.edit import FunctionEdit
    from hdrfix.lang.cst.index import cst_index
    from hdrfix.lang.errors import HdrfixError
    from hdrfix_plugins.phase2.modea import has_mode_a

    class HalfDone:
        def done(self, pyfile, analysis, site):
            return not has_mode_a(pyfile, site)

        def edit(self, pyfile, analysis, site):
            index = cst_index(pyfile, site.ref)
            root = site.roots[0]
            keeps_cap = cst.parse_expression("residual_pred_log * self.log_delta_abs_max")
            return [(site.ref, FunctionEdit().swap(index.value(root), keeps_cap))]

    plan = PhasePlan("phase2")
    options = {"exclude": [str(framework / INFERENCE)]}
    with pytest.raises(HdrfixError) as caught:
        plan_sites(plan, Repo(framework), options, "Mode A", HalfDone())
    message = str(caught.value) + " " + (caught.value.hint or "")
    assert "`delta_log = residual_pred_log * self.log_delta_abs_max`" in message
    assert "report" not in message
