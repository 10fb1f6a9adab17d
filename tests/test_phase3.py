"""phase3: the residual-distribution loss, on the fixture and on the variants with its shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FRAMEWORK, built_in_phases, copy_tree, hdrfix, imported, snapshot
from fielddata import (
    CONFIG,
    MISSING,
    PRESET,
    TRAINER,
    applied,
    changed_files,
    check_file,
    diff_of,
    edit,
    states,
)

# The dry run, --check, a second apply and revert on the fixture and the variants: test_contract.
LOSSES = ("histogram", "moment", "sparsity", "none")

INIT_LINES = [
    (
        "        self.residual_distribution_loss = str(norm_unified.get("
        "'residual_distribution_loss', 'none'))"
    ),
    (
        "        self.residual_distribution_weight = float(norm_unified.get("
        "'residual_distribution_weight', 0.0))"
    ),
]
# The term, under the log supervision's switch, as it is inserted at the top of a block.
TERM = [
    "if self.log_sup_enable and self.residual_distribution_loss != 'none':",
    "    target_delta = torch.log(torch.clamp(patch_target_rgb, min=0) + eps) - log_img",
    "    if self.residual_distribution_loss == 'histogram':",
    "        pred_sorted = torch.sort(delta_log.flatten(1), dim=1).values",
    "        target_sorted = torch.sort(target_delta.flatten(1), dim=1).values",
    "        dist_loss = (pred_sorted - target_sorted).abs().mean()",
    "    elif self.residual_distribution_loss == 'moment':",
    (
        "        mean_diff = (delta_log.flatten(1).mean(dim=1) - "
        "target_delta.flatten(1).mean(dim=1)).abs()"
    ),
    (
        "        var_diff = (delta_log.flatten(1).var(dim=1) - "
        "target_delta.flatten(1).var(dim=1)).abs()"
    ),
    "        dist_loss = (mean_diff + var_diff).mean()",
    "    elif self.residual_distribution_loss == 'sparsity':",
    "        dist_loss = delta_log.abs().mean()",
    "    else:",
    (
        "        raise ValueError(f'unknown residual_distribution_loss: "
        "{self.residual_distribution_loss!r}')"
    ),
]
# In the fixture's training step: dist_loss = None before the dispatch holding the residual,
# the term inside its log arm (after the hole mask, where delta_log is final), and the add
# after the log supervision's add, under the same switch.
TERM_LINES = [
    "        dist_loss = None",
    *(" " * 16 + line for line in TERM),
    "        if self.log_sup_enable and dist_loss is not None:",
    "            recon_loss = recon_loss + self.residual_distribution_weight * dist_loss",
]


@pytest.fixture(scope="module")
def phase1_tree(tmp_path_factory) -> Path:
    repo = copy_tree(FRAMEWORK, tmp_path_factory.mktemp("phase1") / "framework")
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    return repo


@pytest.fixture
def after_phase1(phase1_tree: Path, tmp_path: Path) -> Path:
    """A fresh copy of the fixture with phase1 applied (phase3 requires it)."""
    return copy_tree(phase1_tree, tmp_path / "framework")


def test_list_shows_phase3_with_its_requirement() -> None:
    result = hdrfix("list")
    rows = {line.split()[0]: line.split()[1] for line in result.out.splitlines()[1:]}
    assert rows["phase3"] == "phase1"
    assert set(built_in_phases()) <= set(rows)


def test_requires_phase1(framework: Path) -> None:
    assert states(framework)["phase3"] == "pending"
    before = snapshot(framework)
    refused = hdrfix("apply", "phase3", "--repo", framework)
    assert refused.code == 2 and "phase3 requires phase1" in refused.err
    assert snapshot(framework) == before
    both = hdrfix("apply", "phase3", "--repo", framework, "--with-deps")
    assert both.code == 0, both.err
    assert hdrfix("apply", "phase1", "phase3", "--repo", framework, "--check").code == 0


@pytest.mark.parametrize("loss", LOSSES)
def test_settings_read_term_in_the_log_arm_and_added_to_the_loss(
    loss: str, after_phase1: Path
) -> None:
    repo = after_phase1
    _, before, after = applied(repo, "phase3", "--loss", loss)
    assert changed_files(before, after) == {CONFIG, PRESET, TRAINER}
    keys = {
        "normalization.residual_distribution_loss": (MISSING, loss),
        "normalization.residual_distribution_weight": (MISSING, 0.5),
    }
    for rel in (CONFIG, PRESET):
        check_file(before, after, rel, keys)
    # the settings read in __init__; in the training step: dist_loss = None before the dispatch
    # holding the residual, the term inside its log arm (after the hole mask, where delta_log is
    # final), and the add after the log supervision's add, under the same switch
    step = "PatchFrameInterpolationTrainer.training_step"
    check_file(
        before,
        after,
        TRAINER,
        [
            edit(
                "PatchFrameInterpolationTrainer.__init__",
                "self.log_sup_huber_delta = "
                "float(norm_unified.get('log_supervision_huber_delta', 0.2))",
                added=[line.strip() for line in INIT_LINES],
            ),
            edit(step, "predictions, targets = {}, {}", added=["dist_loss = None"]),
            edit(
                step,
                " " * 12 + "delta_log = delta_log * mask_weight",
                added=[" " * 8 + line for line in TERM],
            ),
            edit(
                step,
                "    loss_dict['log_supervision'] = log_sup_loss.detach()",
                added=[line[8:] for line in TERM_LINES[-2:]],
            ),
        ],
    )


def test_check_and_status_keep_the_values_the_user_chose(after_phase1: Path) -> None:
    repo = after_phase1
    assert hdrfix("apply", "phase3", "--repo", repo, "--check").code == 1
    assert (
        hdrfix("apply", "phase3", "--repo", repo, "--loss", "moment", "--weight", "0.25").code == 0
    )
    config = (repo / CONFIG).read_text(encoding="utf-8")
    assert "  residual_distribution_loss: moment\n  residual_distribution_weight: 0.25\n" in config
    # without --loss/--weight, status and --check accept what is there
    assert states(repo)["phase3"] == "applied"
    assert hdrfix("apply", "phase3", "--repo", repo, "--check").code == 0
    # switching the loss is a config edit only: the code already dispatches on the string
    switched = hdrfix("apply", "phase3", "--repo", repo, "--loss", "sparsity", "--dry-run")
    assert TRAINER not in switched.out
    assert diff_of(switched.out, CONFIG) == (
        ["  residual_distribution_loss: sparsity"],
        ["  residual_distribution_loss: moment"],
    )


def test_bad_options_are_refused(after_phase1: Path) -> None:
    kl = hdrfix("apply", "phase3", "--repo", after_phase1, "--loss", "kl")
    assert (
        kl.code == 2 and "--loss must be histogram | moment | sparsity | none, got 'kl'" in kl.err
    )
    assert "KL divergence is not offered" in kl.err
    negative = hdrfix("apply", "phase3", "--repo", after_phase1, "--weight", "-1")
    assert negative.code == 2 and "--weight must be a finite number at least 0" in negative.err


def test_only_the_training_step_gets_the_term(after_phase1: Path) -> None:
    assert hdrfix("apply", "phase3", "--repo", after_phase1).code == 0
    text = (after_phase1 / TRAINER).read_text(encoding="utf-8")
    validation = text[text.index("def validation_step") :]
    assert text.count("self.residual_distribution_weight * dist_loss") == 1
    assert "residual_distribution" not in validation


@pytest.mark.parametrize(
    "name",
    [
        "crlf",
        "exp_inline",
        "multiline",
        "multi_config",
        "no_default_path",
        "one_line_if",
        "field_helper_tuple",
        "field_hand_clamped_branches",
        "field_no_scale",
        "field_predict_step",
    ],
)
def test_variants(name: str, variant) -> None:
    repo = variant(name)
    first = hdrfix("apply", "phase1", "phase3", "--repo", repo)
    assert first.code == 0, first.err
    applied = snapshot(repo)
    trainer = next(
        rel
        for rel in applied
        if rel.endswith(".py") and b"residual_distribution_weight *" in applied[rel]
    )
    assert applied[trainer].count(b"self.residual_distribution_weight * dist_loss") == 1
    compile(applied[trainer], trainer, "exec")
    if name == "crlf":
        assert applied[trainer].count(b"\n") == applied[trainer].count(b"\r\n")
    assert hdrfix("apply", "phase3", "--repo", repo, "--check").code == 0  # every item done


def test_supervision_off_says_the_term_is_off_too(variant) -> None:
    repo = variant("supervision_off")
    result = hdrfix("apply", "phase1", "phase3", "--repo", repo)
    assert result.code == 0
    assert "log_supervision_enable is false; the residual-distribution term" in result.err


def test_residual_computed_in_a_helper_is_refused(variant) -> None:
    repo = variant("helper_method")
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    before = snapshot(repo)
    result = hdrfix("apply", "phase3", "--repo", repo)
    assert result.code == 2
    assert "training_step has no log-domain reconstruction of its own" in result.err
    assert "(the reconstruction is in _log_domain_forward)" in result.err
    assert snapshot(repo) == before
    assert states(repo)["phase3"].startswith("error: ")


def _without_supervision_add(trainer: Path, block: str) -> None:
    text = trainer.read_text(encoding="utf-8")
    assert text.count(block) == 1
    trainer.write_text(text.replace(block, ""), encoding="utf-8")


def _dry_run_trainer_diff(repo: Path) -> tuple[list[str], list[str]]:
    """(added, removed) lines of the trainer in ``apply phase3 --dry-run``, which must succeed."""
    result = hdrfix("apply", "phase3", "--repo", repo, "--dry-run")
    assert result.code == 0, result.err
    return diff_of(result.out, TRAINER)


def test_without_log_supervision_the_term_goes_before_the_return(variant) -> None:
    """The older shape (fixtures/variants): one log-domain path per method, and here no
    log-supervision add at all; the target's log comes from the reconstruction loss."""
    repo = variant("no_scale")
    assert hdrfix("apply", "phase1", "--repo", repo).code == 0
    trainer = repo / TRAINER
    _without_supervision_add(
        trainer,
        "        if self.log_supervision_enable:\n"
        "            target_log = torch.log(torch.clamp(target_rgb, min=0) + eps)\n"
        "            log_loss = self._log_supervision_loss(Ln_hat, target_log)\n"
        "            loss = loss + self.log_supervision_weight * log_loss\n",
    )
    added, removed = _dry_run_trainer_diff(repo)
    assert removed == []
    assert added[2:5] == [
        "        dist_loss = None",
        "        if self.log_supervision_enable and self.residual_distribution_loss != 'none':",
        "            target_delta = torch.log(torch.clamp(target_rgb, min=0) + eps) - log_img",
    ]
    assert added[-2:] == [
        "        if self.log_supervision_enable and dist_loss is not None:",
        "            loss = loss + self.residual_distribution_weight * dist_loss",
    ]
    assert hdrfix("apply", "phase3", "--repo", repo).code == 0
    patched = trainer.read_text(encoding="utf-8")
    compile(patched, TRAINER, "exec")
    training = patched[: patched.index("def validation_step")]
    assert training.index("dist_loss = None") < training.index("dist_loss = (pred_sorted")
    assert training.index("* dist_loss") < training.index("return {'loss'")
    assert hdrfix("apply", "phase3", "--repo", repo, "--check").code == 0


def test_field_shape_without_the_supervision_add_adds_before_the_return(
    after_phase1: Path,
) -> None:
    """The fixture with its log-supervision add removed: the term is still computed in the
    log arm, and added to the returned loss before the ``return``."""
    trainer = after_phase1 / TRAINER
    _without_supervision_add(
        trainer,
        "        if self.log_sup_enable and (log_sup_loss is not None):\n"
        "            recon_loss = recon_loss + self.log_sup_weight * log_sup_loss\n"
        "            loss_dict['log_supervision'] = log_sup_loss.detach()\n",
    )
    added, removed = _dry_run_trainer_diff(after_phase1)
    assert removed == [] and added[:-2] == INIT_LINES + TERM_LINES[:-2]
    assert added[-2:] == [
        "        if self.log_sup_enable and dist_loss is not None:",
        "            total_loss = total_loss + self.residual_distribution_weight * dist_loss",
    ]
    assert hdrfix("apply", "phase3", "--repo", after_phase1).code == 0
    patched = trainer.read_text(encoding="utf-8")
    training = patched[: patched.index("def validation_step")]
    assert training.rindex("* dist_loss") < training.rindex("return {")
    assert hdrfix("apply", "phase3", "--repo", after_phase1, "--check").code == 0


# --- the inserted code computes hdrfix.nn's losses ------------------------------------------


@pytest.fixture(scope="module")
def two_copies(phase1_tree: Path, tmp_path_factory) -> tuple[Path, Path]:
    """The fixture with phase1 (the baseline) and with phase1 + phase3."""
    both = copy_tree(phase1_tree, tmp_path_factory.mktemp("p3") / "framework")
    assert hdrfix("apply", "phase3", "--repo", both).code == 0
    return phase1_tree, both


def _losses(repo: Path, kinds: tuple[str, ...], batch, state=None) -> dict:
    """Training loss per kind (weight 0.5, float64) on one batch, plus delta_log and weights."""
    from hdrfix.validate.fixture import build_trainer

    out = {}
    with imported(repo, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(repo / CONFIG)
        for kind in kinds:
            config["normalization"].update(
                residual_distribution_loss=kind, residual_distribution_weight=0.5
            )
            model = build_trainer(trainer, config).double()
            if state is not None:
                model.load_state_dict(state)
            out[kind] = model.training_step(batch, 0)["loss"]
        out["delta_log"] = model.last_log_branch["delta_log"]
        out["state"] = model.state_dict()
    return out


@pytest.mark.usefixtures("one_thread")
def test_inserted_term_equals_hdrfix_nn(two_copies: tuple[Path, Path]) -> None:
    torch = pytest.importorskip("torch")
    import hdrfix.nn as hnn
    from hdrfix.validate.fixture import build_trainer
    from hdrfix.validate.synth import make_field_batch

    base, patched = two_copies
    batch = {k: v.double() for k, v in make_field_batch(2, 32, 48, seed=0).items()}
    torch.manual_seed(0)
    with torch.no_grad():
        baseline = _losses(base, ("unread",), batch)  # phase1 only: the keys are not read
        got = _losses(patched, LOSSES, batch, baseline["state"])

    eps = 1e-6
    log_img = hnn.log_normalize(batch["patch_input"][:, :3], eps).log_img
    target_delta = hnn.target_log_residual(batch["patch_target_rgb"], log_img, eps)
    delta_log = got["delta_log"]
    assert torch.equal(delta_log, baseline["delta_log"])
    assert torch.equal(got["none"], baseline["unread"])
    for kind in ("histogram", "moment", "sparsity"):
        expected = 0.5 * hnn.residual_distribution_loss(kind, delta_log, target_delta)
        assert float(expected) > 0
        torch.testing.assert_close(got[kind] - baseline["unread"], expected, rtol=0, atol=1e-6)

    with imported(patched, "train.patch_training_framework") as (trainer,):
        config = trainer.load_config(patched / CONFIG)
        config["normalization"]["residual_distribution_loss"] = "kl"
        with pytest.raises(ValueError, match="unknown residual_distribution_loss: 'kl'"):
            build_trainer(trainer, config).training_step(make_field_batch(1, 16, 16, seed=0), 0)
