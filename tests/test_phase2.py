"""phase2: the network bounds its own residual (tanh * residual_output_scale), Mode A uses it.

Structural tests run on the fixture and on every network/trainer variant; the runtime tests
import the patched copies and check that every return path is bounded exactly once and that a
migrated checkpoint computes what the phase1 model computed.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import libcst as cst
import pytest
from conftest import FRAMEWORK, hdrfix, imported, snapshot
from fielddata import (
    CLAMP,
    CONFIG,
    INFERENCE,
    NETWORK,
    TOOLS,
    TRAINER,
    applied,
    changed_files,
    check_file,
    edit,
)

from hdrfix.core.repo import Repo
from hdrfix_plugins.phase2 import Phase2
from hdrfix_plugins.phase2.network import Unrecognised, bound_forward

# The dry run, --check, a second apply and revert on the fixture and the variants: test_contract.
BOUND = "residual = torch.tanh(residual) * self.residual_output_scale"
PARAM = "self.residual_output_scale = nn.Parameter(torch.tensor([6.0]))"
NET_VARIANTS = ["net_tuple_return", "net_interpolate", "net_two_returns", "net_renamed"]
MODE_B = "(self.log_delta_scale * denom) * torch.tanh(residual_pred_log)"


def excluding(repo: Path) -> list[str | Path]:
    """The fixture's inference module reconstructs from the network's output too: phase2
    refuses until it is included or excluded (test_bad_input has the refusal)."""
    return ["--exclude", repo / INFERENCE]


def apply_with_phase1(repo: Path, *options: str | Path):
    """``apply phase1 phase2`` in one run, as a user new to both would type it."""
    return hdrfix("apply", "phase1", "phase2", "--repo", repo, *options)


def with_network(repo: Path) -> Path:
    """Variants without a network of their own import the fixture's: give them a copy."""
    target = repo / NETWORK
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        for folder in (repo / "src", repo / "src/npu", repo / "src/npu/networks", target.parent):
            (folder / "__init__.py").touch()
        shutil.copy(FRAMEWORK / NETWORK, target)
    return repo


def state(repo: Path, **options) -> str:
    return Phase2().plan(Repo(repo), options).state


# -- the CLI on the fixture ----------------------------------------------------------------------


def test_mode_a_uses_the_bounded_residual_and_the_network_bounds_it(framework: Path) -> None:
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    result, before, after = applied(framework, "phase2", *excluding(framework))
    assert changed_files(before, after) == {TRAINER, NETWORK}
    # Mode A only (Mode B and phase1's clamps stay); the log arm of training_step is one level
    # deeper than validation_step's
    mode_a = "delta_log = self.log_delta_alpha * torch.tanh(residual_pred_log) "
    mode_a += "* self.log_delta_abs_max * scale"
    check_file(
        before,
        after,
        TRAINER,
        [
            edit(
                f"PatchFrameInterpolationTrainer.{method}",
                pad + "if self.log_delta_abs_max > 0.0:",
                removed=[pad + "    " + mode_a],
                added=[pad + "    delta_log = residual_pred_log * scale"],
            )
            for method, pad in (("training_step", " " * 8), ("validation_step", " " * 4))
        ],
    )
    # the parameter after the output conv; the bound once, after the if that interpolates
    check_file(
        before,
        after,
        NETWORK,
        [
            edit(
                "PatchNetwork.__init__",
                "self.output_conv = nn.Conv2d(base_channels, output_channels, kernel_size=1)",
                added=[PARAM],
            ),
            edit("PatchNetwork.forward", "    " + INTERPOLATE.strip(), added=[BOUND]),
        ],
    )
    trainer = after[TRAINER].decode()
    assert trainer.count(CLAMP) == 2 and trainer.count(MODE_B) == 2
    assert f"{TOOLS}:" not in result.err  # its legacy Mode B only: nothing for phase2 there
    assert state(framework, exclude=[str(framework / INFERENCE)]) == "applied"


def test_phase2_alone_needs_phase1(framework: Path) -> None:
    before = snapshot(framework)
    result = hdrfix("apply", "phase2", "--repo", framework, *excluding(framework))
    assert result.code == 2 and "phase1" in result.err
    assert snapshot(framework) == before
    deps = hdrfix("apply", "phase2", "--repo", framework, "--with-deps", *excluding(framework))
    assert deps.code == 0, deps.err
    assert state(framework) == "applied"
    assert hdrfix("apply", "phase1", "--repo", framework, "--check").code == 0


def test_phase2_refused_while_phase1_is_partial(framework: Path) -> None:
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    config = framework / CONFIG
    config.write_text(
        config.read_text(encoding="utf-8").replace("log_delta_alpha: 1.0", "log_delta_alpha: 1.2"),
        encoding="utf-8",
    )
    before = snapshot(framework)
    result = hdrfix("apply", "phase2", "--repo", framework, *excluding(framework))
    assert result.code == 2 and "phase1" in result.err and "partial" in result.err
    assert snapshot(framework) == before


def test_scale_init_and_config_value(framework: Path) -> None:
    result = apply_with_phase1(framework, "--dry-run", "--scale-init", "2.5", *excluding(framework))
    assert result.code == 0, result.err
    assert "nn.Parameter(torch.tensor([2.5]))" in result.out
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    config = framework / CONFIG
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "log_delta_abs_max: 6.0", "log_delta_abs_max: 4.0"
        ),
        encoding="utf-8",
    )
    plan = Phase2().plan(Repo(framework), {})  # phase1 no longer applied: plan it directly
    assert any(
        "torch.tensor([4.0])" in (fn if isinstance(fn, str) else cst.Module([]).code_for_node(fn))
        for _, ref, fn in plan.function_edits
        if ref.name == "__init__"
    )


INTERPOLATE = (
    "            residual = F.interpolate(residual, size=x.shape[-2:], mode='bilinear', "
    "align_corners=False)\n"
)


def test_hand_patched_network_counts(framework: Path) -> None:
    net = framework / NETWORK
    text = net.read_text(encoding="utf-8")
    assert text.count(INTERPOLATE) == 1 and text.count("kernel_size=1)\n") == 1
    text = text.replace(
        INTERPOLATE,
        INTERPOLATE + "        residual = self.residual_output_scale * residual.tanh()\n",
    )
    net.write_text(
        text.replace(
            "kernel_size=1)\n",
            "kernel_size=1)\n        self.residual_output_scale = nn.Parameter(torch.ones(1))\n",
            1,
        ),
        encoding="utf-8",
    )
    plan = Phase2().plan(Repo(framework), {})
    assert [i.done for i in plan.items if i.path == NETWORK] == [True, True]
    assert plan.state == "partial"  # the trainer is not patched yet
    assert not [e for e in plan.function_edits if e[0] == NETWORK]


def test_include_patches_inference_sites(framework: Path) -> None:
    result = apply_with_phase1(
        framework, "--include", framework / INFERENCE, "--include", framework / TOOLS
    )
    assert result.code == 0, result.err
    inference = (framework / INFERENCE).read_text()
    # Mode A without a factor: that module's `scale` is the dither strength, not a residual scale
    assert "            if beta > 0.0:\n                delta_log = batch_delta_log\n" in inference
    assert "batch_delta_log * scale" not in inference and "alpha * torch.tanh" not in inference
    assert inference.count("delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)") == 1
    # the tool has the legacy Mode B only: phase2 keeps it (as in the trainer), phase1 clamps it
    tool = (framework / TOOLS).read_text()
    assert (
        "    delta_log = (log_delta_scale * denom) * torch.tanh(pred)\n"
        "    delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)\n"
    ) in tool
    assert f"{TOOLS}:" not in result.err.split("phase2:")[1]


# -- variants: trainer shapes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode_a"),
    [
        ("no_scale", "            delta_log = residual_pred_log\n"),
        ("helper_method", "            delta_log = residual_pred_log * residual_scale\n"),
        (
            "one_line_if",
            ("        if self.log_delta_abs_max > 0.0: delta_log = residual_pred_log * scale\n"),
        ),
        ("multiline", "            delta_log = residual_pred_log * scale  # Mode A\n"),
        ("mode_a_only", "        delta_log = residual_pred_log * scale\n"),
        ("crlf", "            delta_log = residual_pred_log * scale\r\n"),
        # the field's shape: Mode A inside the log arm of the first norm_type dispatch
        ("field_no_scale", "                    delta_log = residual_pred_log\n"),
        ("field_helper_tuple", "            delta_log = residual_pred_log * scale\n"),
        ("field_predict_step", "                delta_log = residual_pred_log * scale\n"),
    ],
)
def test_mode_a_shapes(name: str, mode_a: str, variant) -> None:
    repo = with_network(variant(name))
    result = hdrfix("apply", "phase1", "phase2", "--repo", repo)
    assert result.code == 0, result.err
    trainer = next(repo.glob("train*/*.py")).read_bytes().decode("utf-8")
    assert mode_a in trainer
    assert "log_delta_alpha * torch.tanh" not in trainer
    sites = {"helper_method": 1, "field_helper_tuple": 1, "field_predict_step": 3}
    assert trainer.count("torch.clamp(delta_log, min=-8.0, max=8.0)") == sites.get(name, 2)
    if "no_scale" in name:  # no `scale` exists there: Mode A gains no factor
        assert "residual_pred_log * scale" not in trainer
    if name == "multiline":
        assert "# Mode A: absolute cap" in trainer


# -- variants: network shapes --------------------------------------------------------------------


@pytest.mark.parametrize("name", NET_VARIANTS)
def test_network_variant_gains_the_parameter_once(name: str, variant) -> None:
    repo = variant(name)
    result = hdrfix("apply", "phase1", "phase2", "--repo", repo)
    assert result.code == 0, result.err
    text = (repo / NETWORK).read_text(encoding="utf-8")
    assert text.count(PARAM) == 1


def test_two_network_classes_are_ambiguous(variant) -> None:
    repo = variant("net_two_classes")
    before = snapshot(repo)
    result = hdrfix("apply", "phase1", "phase2", "--repo", repo)
    assert result.code == 2
    assert "patch_network_large.py" in result.err and "patch_network_small.py" in result.err
    assert "--network" in result.err
    assert snapshot(repo) == before
    small = "src/npu/networks/patch/patch_network_small.py"
    chosen = hdrfix("apply", "phase1", "phase2", "--repo", repo, "--network", repo / small)
    assert chosen.code == 0, chosen.err
    assert "residual_output_scale" in (repo / small).read_text(encoding="utf-8")
    assert "residual_output_scale" not in (
        repo / "src/npu/networks/patch/patch_network_large.py"
    ).read_text(encoding="utf-8")


# -- bad input -----------------------------------------------------------------------------------


def _break(framework: Path, old: str, new: str) -> dict[str, bytes]:
    net = framework / NETWORK
    text = net.read_text(encoding="utf-8")
    assert old in text
    net.write_text(text.replace(old, new), encoding="utf-8")
    return snapshot(framework)


def test_network_syntax_error(framework: Path) -> None:
    before = _break(framework, "        s2 = self.enc2(s1)\n", "        s2 = self.enc2(s1\n")
    result = hdrfix("apply", "phase1", "phase2", "--repo", framework, *excluding(framework))
    assert result.code == 2 and f"{NETWORK}:" in result.err and "syntax" in result.err
    assert snapshot(framework) == before


def test_forward_without_a_recognisable_residual(framework: Path) -> None:
    before = _break(
        framework,
        "            return residual, warped_rgb + residual * self.residual_scale_factor\n"
        "        return residual\n",
        "            return {'residual': residual}\n        return x\n",
    )
    result = hdrfix("apply", "phase1", "phase2", "--repo", framework, *excluding(framework))
    assert result.code == 2
    assert f"{NETWORK}:" in result.err and "looked for" in result.err
    assert snapshot(framework) == before


def test_two_classes_in_one_file_and_no_network(framework: Path) -> None:
    net = framework / NETWORK
    net.write_text(
        net.read_text(encoding="utf-8") + "\n\nclass PatchNetwork(nn.Module):\n    pass\n",
        encoding="utf-8",
    )
    result = hdrfix("apply", "phase1", "phase2", "--repo", framework, *excluding(framework))
    assert result.code == 2 and "2 times" in result.err
    net.unlink()
    result = hdrfix("apply", "phase1", "phase2", "--repo", framework, *excluding(framework))
    assert result.code == 2 and "no network found" in result.err


# -- the forward analysis on small shapes --------------------------------------------------------


def bounded(source: str) -> str:
    fn = cst.parse_module(textwrap.dedent(source)).body[0]
    assert isinstance(fn, cst.FunctionDef)
    plan = bound_forward(fn, "torch")
    return cst.Module([plan.edit.apply(fn)]).code if not plan.done else "done"


def test_producer_in_both_branches_is_bounded_after_the_if() -> None:
    out = bounded("""
        def forward(self, x):
            if self.big:
                r = self.a(x)
            else:
                r = self.b(x)
            y = x * 2
            return r, y + r
    """)
    assert out.count("tanh") == 1
    assert out.index("r = torch.tanh(r)") > out.index("r = self.b(x)")
    assert out.index("r = torch.tanh(r)") < out.index("y = x * 2")


def test_returned_calls_are_wrapped() -> None:
    out = bounded("""
        def forward(self, x, fast=False):
            if fast:
                return self.head(x)[:, :3], x + self.head(x)[:, :3]
            out = self.head(self.body(x))
            out = out.clamp(-50, 50)
            return self.refine(out)
    """)
    assert (
        "return torch.tanh(self.head(x)[:, :3]) * self.residual_output_scale, "
        "x + torch.tanh(self.head(x)[:, :3]) * self.residual_output_scale" in out
    )
    # no plain ``return out`` to share a bound with: the returned call itself is wrapped
    assert "return torch.tanh(self.refine(out)) * self.residual_output_scale" in out
    assert out.count("tanh") == 3


def test_derived_names_are_not_bounded_twice() -> None:
    out = bounded("""
        def forward(self, x):
            out = self.head(x)
            cropped = out[:, :, :4]
            if self.full:
                return cropped
            return out
    """)
    assert out.count("tanh") == 1 and "out = torch.tanh(out)" in out


def test_already_bounded_by_hand() -> None:
    assert (
        bounded("""
        def forward(self, x):
            y = self.residual_output_scale * torch.tanh(self.head(x))
            return y
    """)
        == "done"
    )


@pytest.mark.parametrize("body", ["return x", "return {'r': self.head(x)}", "pass"])
def test_unrecognised_returns(body: str) -> None:
    with pytest.raises(Unrecognised):
        bounded(f"def forward(self, x):\n    {body}\n")


# -- running the patched networks ----------------------------------------------------------------


@pytest.fixture
def torch():
    """torch for the runtime tests only (the structural tests above run without it).

    One thread: these models are tiny, and spinning OpenMP threads on a busy CI box cost
    seconds per step.
    """
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def _net_kwargs(repo: Path) -> dict:
    from hdrfix.lang import yamledit

    data = yamledit.load((repo / CONFIG).read_text(encoding="utf-8"), CONFIG)
    return {k: int(v) for k, v in data["network"].items()}


def _raw_outputs(repo: Path, x):
    """The unpatched network's state and plain output, for comparing after the patch."""
    import torch

    with imported(repo, "src.npu.networks.patch.patch_network") as (module,):
        torch.manual_seed(0)
        net = module.PatchNetwork(**_net_kwargs(repo)).eval()
        with torch.no_grad():
            return net.state_dict(), net(x)


@pytest.mark.parametrize("name", ["framework"] + NET_VARIANTS)
def test_every_return_path_is_bounded_exactly_once(
    name: str, variant, framework: Path, torch
) -> None:
    repo = framework if name == "framework" else variant(name)
    torch.manual_seed(1)
    x = torch.randn(2, _net_kwargs(repo)["input_channels"], 12, 20)
    raw_state, raw = _raw_outputs(repo, x)
    exclude = excluding(repo) if name == "framework" else []
    assert hdrfix("apply", "phase1", "phase2", "--repo", repo, *exclude).code == 0
    with imported(repo, "src.npu.networks.patch.patch_network") as (module,):
        net = module.PatchNetwork(**_net_kwargs(repo)).eval()
        missing = net.load_state_dict(raw_state, strict=False).missing_keys
        assert missing == ["residual_output_scale"]
        scale = net.residual_output_scale
        with torch.no_grad():
            assert float(scale) == 6.0
            if name != "net_two_returns":  # unsaturated: exactly tanh(raw) * scale
                torch.testing.assert_close(net(x), torch.tanh(raw) * 6.0)
            scale.fill_(0.5)
            out_conv = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
            for bias in (1e4, -1e4):  # saturated: once gives +-0.5, twice 0.5 * tanh(0.5)
                out_conv.weight.zero_()
                out_conv.bias.fill_(bias)
                paths = _paths(net, x)
                for residual in paths:
                    torch.testing.assert_close(residual, torch.full_like(residual, bias / 2e4))
            out_conv.weight.fill_(1e4)
            out_conv.bias.fill_(1e4)
            for residual in _paths(net, x):
                assert float(residual.abs().max()) <= 0.5
            full = net(x, return_full_image=True)
            if isinstance(full, tuple):
                residual, reconstructed = full
                torch.testing.assert_close(reconstructed, x[:, :3] + residual)


def _paths(net, x) -> list:
    """The residual from every way of calling forward."""
    import torch

    full = net(x, return_full_image=True)
    override = net(x, boundary_override=torch.zeros_like(x[:, :1]))
    return [net(x), full[0] if isinstance(full, tuple) else full, override]


# -- the patched framework: same numbers from a migrated checkpoint, and it trains ---------------


def _steps(repo: Path, state_dict=None, ckpt: Path | None = None):
    """delta_log and prediction of a training and a validation step; the model's state."""
    import torch

    from hdrfix.validate.fixture import build_trainer
    from hdrfix.validate.synth import make_field_batch

    with imported(repo, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(repo / CONFIG)
        torch.manual_seed(0)
        model = build_trainer(trainer, config)
        if ckpt is not None:
            model.load_state_dict(torch.load(ckpt, weights_only=True), strict=True)
        results = []
        with torch.no_grad():
            model.training_step(make_field_batch(2, 24, 32, seed=0), 0)
            results.append(dict(model.last_log_branch))
            model.validation_step(make_field_batch(2, 24, 32, seed=1), 0)
            results.append(dict(model.last_log_branch))
        return results, model.state_dict()


def test_migrated_checkpoint_reproduces_phase1(tmp_path: Path, torch) -> None:
    from conftest import copy_tree

    from hdrfix_plugins.phase2.checkpoint import migrate_checkpoint

    before = copy_tree(FRAMEWORK, tmp_path / "phase1")
    after = copy_tree(FRAMEWORK, tmp_path / "phase2")
    assert hdrfix("apply", "phase1", "--repo", before).code == 0
    assert hdrfix("apply", "phase1", "phase2", "--repo", after, *excluding(after)).code == 0
    expected, state_dict = _steps(before)
    ckpt, migrated = tmp_path / "phase1.pt", tmp_path / "phase2.pt"
    torch.save(state_dict, ckpt)
    report = migrate_checkpoint(ckpt, migrated, config=after / CONFIG, scale_init=None)
    assert report.value == 6.0 and report.added == ("patch_network.residual_output_scale",)
    got, _ = _steps(after, ckpt=migrated)
    for old, new in zip(expected, got):
        for key in ("delta_log", "prediction"):
            torch.testing.assert_close(new[key], old[key], rtol=1e-6, atol=1e-6)


def test_patched_framework_trains_and_learns_the_scale(framework: Path, torch) -> None:
    from hdrfix.validate.fixture import build_trainer
    from hdrfix.validate.synth import SyntheticHDR

    assert hdrfix("apply", "phase1", "phase2", "--repo", framework, *excluding(framework)).code == 0
    with imported(framework, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(framework / CONFIG)
        torch.manual_seed(0)
        model = build_trainer(trainer, config)
        optimiser = model.configure_optimizers()
        scale = model.patch_network.residual_output_scale
        stream = SyntheticHDR(24, 32, seed=0, batch_size=2)
        for step in range(3):
            out = model.training_step(stream.field_batch(step), step)
            optimiser.zero_grad()
            out["loss"].backward()
            assert scale.grad is not None and float(scale.grad.abs()) > 0
            optimiser.step()
            assert torch.isfinite(out["loss"])
        assert float(scale.detach()) != 6.0
        assert float(model.last_log_branch["delta_log"].abs().max()) <= 8.0


MODE_A_LINE = (
    "                    delta_log = self.log_delta_alpha * torch.tanh(residual_pred_log) "
    "* self.log_delta_abs_max * scale\n"
)


@pytest.mark.parametrize(
    ("written", "noted"),
    [
        (
            "                    delta_log = (\n"
            "                        self.log_delta_alpha  # the cap's note\n"
            "                        * torch.tanh(residual_pred_log)\n"
            "                        * self.log_delta_abs_max * scale  # and its scale\n"
            "                    )\n",
            "(# the cap's note; # and its scale)",
        ),
        (MODE_A_LINE.replace("scale\n", "scale  # a trailing comment stays\n"), None),
    ],
)
def test_comments_inside_mode_a_are_named_before_the_rewrite_drops_them(framework, written, noted):
    trainer = framework / "train/patch_training_framework.py"
    text = trainer.read_text()
    assert MODE_A_LINE in text
    trainer.write_text(text.replace(MODE_A_LINE, written, 1))
    include = ("--include", "src/npu/networks/patch_inpainting.py")
    result = hdrfix("apply", "phase1", "phase2", "--dry-run", *include, "--repo", framework)
    assert result.code == 0, result.err
    said = [line for line in result.err.splitlines() if "without the comments" in line]
    if noted is None:
        assert said == []
        assert "delta_log = residual_pred_log * scale  # a trailing comment" in result.out
    else:
        assert len(said) == 1 and noted in said[0]
        assert "PatchFrameInterpolationTrainer.training_step" in said[0]
