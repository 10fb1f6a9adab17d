"""The field suite: every phase, `trial` and `validate` on the user's real repository, both
branches (issue 18.1-18.2). ``make field`` runs it; without ``HDRFIX_FIELD_GITDIR`` it is one
skipped line.

Each branch is exported once per session (``git archive``, no checkpoint blobs) into a fresh
git repository; each test works on its own copy. Runs are kept small (a few steps of small
batches) so that a branch takes minutes on two cores.
"""

from __future__ import annotations

import ast
import contextlib
import json
import operator
import os
import shutil
import sys
from pathlib import Path

import pytest
from fieldrepo import (
    BRANCHES,
    GITDIR_VARIABLE,
    changed_outside_state,
    export,
    gitdir,
    listed,
    reconstructions,
    tracked_bytes,
)
from fieldshape import check_phase3_placement, mode_attribute_of, training_step_of

if gitdir() is None:
    pytest.skip(f"field suite: {GITDIR_VARIABLE} is not set", allow_module_level=True)

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_lightning")
pytest.importorskip("cv2")  # the real package __init__ imports it
from conftest import hdrfix

CLAMP = 8.0
HALF_MAX = 65504.0
PHASE2_OPTIONS = ("include", "exclude")
COMBOS = {
    "phase1": (("phase1",), None),
    "phase1+phase2 --include": (("phase1", "phase2"), "include"),
    "phase1+phase2 --exclude": (("phase1", "phase2"), "exclude"),
    "phase1+phase3": (("phase1", "phase3"), None),
    "bound": (("bound",), None),
    "all four": (("phase1", "phase2", "phase3", "bound"), "include"),
}
TRIED = "phase1+phase2,phase1+phase3,phase1+phase2+phase3+bound"

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.parametrize("branch", BRANCHES)]


@pytest.fixture(scope="session")
def exports(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("field")
    source = gitdir()
    assert source is not None
    return {b: export(source, b, folder / b.replace("/", "_")) for b in BRANCHES}


@pytest.fixture
def repo(exports, branch, tmp_path) -> Path:
    return Path(shutil.copytree(exports[branch], tmp_path / "repo", symlinks=True))


def status(repo: Path, *options: str) -> dict:
    result = hdrfix("status", "--repo", repo, "--format", "json", *options)
    assert result.code in (0, 2), result.err
    return json.loads(result.out)


def _not_patched(report: dict, phase: str) -> list[str]:
    entry = next(p for p in report["phases"] if p["phase"] == phase)
    return sorted({item["path"] for item in entry["not_patched"]})


def inference_paths(repo: Path) -> list[str]:
    """The inference code (derived, not named): what phase2 will not leave unpatched, or where
    phase2 names none (an inference site with Mode B only), phase1's sites outside the trainer
    but for the diagnostic scripts under tools/."""
    report = status(repo)
    paths = _not_patched(report, "phase2") or [
        p for p in _not_patched(report, "phase1") if not p.startswith("tools/")
    ]
    assert paths, "no log-domain code outside the trainer"
    return paths


def scope_options(repo: Path, how: str | None) -> list[str]:
    return [] if how is None else [a for p in inference_paths(repo) for a in (f"--{how}", p)]


# -- status --------------------------------------------------------------------------------


def test_status_lists_every_log_domain_site_with_file_and_line(repo, branch):
    sites = reconstructions(repo)
    rels = {s.rel for s in sites}
    assert len(rels) >= 3, f"{branch}: the oracle found only {rels}"  # trainer, inference, tools
    report = status(repo)
    for phase in ("phase1", "bound"):
        names = listed(report, phase)
        for site in sites:
            lines = [line for rel, q, line in names if (rel, q) == (site.rel, site.qualname)]
            assert lines, f"{phase} does not list {site.rel}:{site.line} ({site.qualname})"
            assert all(site.span[0] <= line <= site.span[1] for line in lines), (site, lines)
    errors = {p["phase"]: p["error"] for p in report["phases"] if p.get("error")}
    assert not errors, errors


# -- apply, a second apply, --check, revert ------------------------------------------------


@pytest.mark.parametrize("combo", list(COMBOS))
def test_each_combination_applies_once_checks_clean_and_reverts_every_byte(repo, combo):
    phases, how = COMBOS[combo]
    options = scope_options(repo, how)
    before = tracked_bytes(repo)
    first = hdrfix("apply", *phases, "--repo", repo, *options)
    assert first.code == 0, first.err
    after = tracked_bytes(repo)
    assert after != before
    second = hdrfix("apply", *phases, "--repo", repo, *options)
    assert second.code == 0, second.err
    assert tracked_bytes(repo) == after, "a second apply changed files"
    check = hdrfix("apply", *phases, "--repo", repo, *options, "--check")
    assert check.code == 0, check.out + check.err
    back = hdrfix("revert", *phases, "--repo", repo)
    assert back.code == 0, back.err
    assert tracked_bytes(repo) == before
    assert changed_outside_state(repo) == []


# -- trial: the real trainer under Lightning, every mode -------------------------------------


_TRIALS: dict[tuple[str, str], tuple[object, dict]] = {}


def _trial(exports, branch, tmp_path_factory, which: str):
    """``hdrfix trial`` once per branch and kind: ``default`` with no flag but the repository,
    ``included`` with the inference code included and the variants that need it."""
    key = (branch, which)
    if key not in _TRIALS:
        folder = tmp_path_factory.mktemp("trial")
        repo = Path(shutil.copytree(exports[branch], folder / "repo", symlinks=True))
        args = ["trial", "--repo", str(repo)]
        if which == "included":
            args += [*scope_options(repo, "include"), "--variants", TRIED, "--steps", "2"]
        with _cache_home(folder / "cache"):
            result = hdrfix(*args)
            report = folder / "cache" / "hdrfix" / "trial" / "report.json"
            data = json.loads(report.read_text()) if report.is_file() else {}
        print(f"\n$ hdrfix {' '.join(args[:1] + ['--repo', f'<export of {branch}>'] + args[3:])}")
        print(result.out, end="")
        _TRIALS[key] = (result, data)
    return _TRIALS[key]


@contextlib.contextmanager
def _cache_home(path: Path):
    """The report goes to the default folder (no --report): a cache of this test's own."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = before


def test_trial_with_no_flag_gives_the_variant_by_mode_table(exports, branch, tmp_path_factory):
    result, data = _trial(exports, branch, tmp_path_factory, "default")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].split()[:3] == ["variant", "mode", "result"]
    ran = {c["variant"] for c in data["cells"]}
    modes = data["settings"]["modes"]
    assert {(c["variant"], c["mode"]) for c in data["cells"]} == {
        (v, m) for v in ran for m in modes
    }
    assert {"base", "phase1", "bound"} <= ran
    # only phase2 may refuse here, and only for the inference code no flag included
    for variant, why in data["refused"].items():
        assert "phase2" in variant.split("+") and "--include" in why, (variant, why)


def test_patched_trainer_trains_where_the_untouched_one_does_with_bounds_held(
    exports, branch, tmp_path_factory
):
    default = _trial(exports, branch, tmp_path_factory, "default")[1]
    included = _trial(exports, branch, tmp_path_factory, "included")
    assert included[0].code == 0, included[0].err
    base = {c["mode"]: c for c in default["cells"] if c["variant"] == "base"}
    assert base["log"]["result"] == "trains", base["log"]
    assert base["log"]["max_abs_delta_log"] > CLAMP and base["log"]["overflow"] > 0
    for cell in default["cells"] + included[1]["cells"]:
        assert cell["runner"] == "lightning", cell
        if base[cell["mode"]]["trains"]:
            assert cell["result"] == "trains", cell
        if cell["mode"] != "log" or cell["variant"] == "base":
            continue
        phases = cell["variant"].split("+")
        if "phase1" in phases:
            assert cell["max_abs_delta_log"] <= CLAMP + 1e-5, cell
        if "bound" in phases:
            assert cell["overflow"] == 0 and cell["max_exp"] <= HALF_MAX, cell
    assert included[1]["refused"] == {}  # every variant, with the inference code included


# -- phase2: the inference module and the training step agree ------------------------------


class _Keep:
    def __init__(self) -> None:
        self.seen: list = []

    def saw_delta(self, value) -> None:
        if isinstance(value, torch.Tensor):
            self.seen.append(value.detach().clone())


def test_phase2_inference_and_training_turn_one_output_into_one_delta_log(repo, branch):
    from hdrfix.trial import loading, trainer_source
    from hdrfix.trial.constructor import SECTION_ALIASES, build_trainer, constructor_arguments
    from hdrfix.trial.logmode import residual_watch
    from hdrfix.trial.probe import Probe
    from hdrfix.trial.training import Outcome, lightning_run
    from hdrfix.validate.importing import _dotted, isolated_imports
    from hdrfix.validate.network import user_tops
    from hdrfix.validate.synth import make_field_batch

    entry = next(p for p in status(repo)["phases"] if p["phase"] == "phase2")
    if not entry["not_patched"]:
        pytest.skip(f"{branch}: phase2 names no inference site (its inference has Mode B only)")
    included = scope_options(repo, "include")
    inference_rel = included[1]
    site = next(i for i in entry["not_patched"] if i["path"] == inference_rel)
    class_name, method = site["what"].split(":")[0].strip().split(".")[:2]
    applied = hdrfix("apply", "phase1", "phase2", "--repo", repo, *included)
    assert applied.code == 0, applied.err

    trainer = loading.find_trainer(repo, {})
    source = trainer_source.read(repo, trainer.rel, trainer.class_name)
    inference = trainer_source.read(repo, inference_rel, class_name)
    batch = make_field_batch(2, 64, 64, seed=3)
    torch.manual_seed(0)
    output = torch.randn(2, 3, 64, 64) * 4  # one network output, past the clamp in places

    with isolated_imports(user_tops(repo, trainer.rel)):
        module = loading.import_trainer(repo, trainer)
        cls = getattr(module, trainer.class_name)
        config = loading.load_config(repo, trainer, "log")
        model = build_trainer(cls, trainer.rel, constructor_arguments(cls, config))
        net = operator.attrgetter(source.network_attrs[0])(model)
        net.forward = lambda *a, **k: output.clone().requires_grad_(True)
        train_seen = _Keep()
        with residual_watch(cls, {"training_step": source.residuals["training_step"]}, train_seen):
            lightning_run(model, [batch], batch, "cpu", Outcome("lightning", Probe()))

        sys.path.insert(0, str(repo))
        inf_cls = getattr(__import__(_dotted(inference_rel), fromlist=["_"]), class_name)
        instance = inf_cls()
        owner_path, mode_key = mode_attribute_of(
            next(
                n
                for n in ast.walk(ast.parse((repo / inference_rel).read_text(encoding="utf-8")))
                if isinstance(n, ast.FunctionDef) and n.name == method
            )
        )
        owner = operator.attrgetter(owner_path)(instance) if owner_path else instance
        setattr(owner, mode_key, "log")
        # the trainer's settings, where the inference config names them alike
        sections = [config.get(n) for n in ("normalization", *SECTION_ALIASES["model"])]
        for section in (s for s in sections if isinstance(s, dict)):
            for key, value in section.items():
                if hasattr(owner, key) and key != mode_key:
                    setattr(owner, key, value)
        # With dither on, the field's inference code rebinds the factor its Mode A multiplies by
        # to the dither strength (its own bug, the same before any phase): compare without it.
        for key in [k for k in vars(owner) if "dither" in k and getattr(owner, k) is True]:
            setattr(owner, key, False)
        setattr(instance, inference.network_attrs[0], net)
        inf_seen = _Keep()
        with torch.no_grad(), residual_watch(inf_cls, inference.residuals, inf_seen):
            instance.eval()
            getattr(instance, method)(batch["patch_input"])

    assert train_seen.seen and inf_seen.seen
    trained, inferred = train_seen.seen[0], inf_seen.seen[-1]
    assert trained.shape == inferred.shape
    assert torch.allclose(trained, inferred, atol=1e-6), float((trained - inferred).abs().max())


# -- phase3: where the real ground truth is, under the supervision's switch ------------------


def test_phase3_term_sits_by_the_real_ground_truth_under_the_same_switch(
    repo, branch, tmp_path, exports, tmp_path_factory
):
    from hdrfix.trial.loading import find_trainer

    rel = find_trainer(repo, {}).rel
    only1 = Path(shutil.copytree(repo, tmp_path / "phase1", symlinks=True))
    assert hdrfix("apply", "phase1", "--repo", only1).code == 0
    result = hdrfix("apply", "phase1", "phase3", "--repo", repo)
    assert result.code == 0, result.err
    check_phase3_placement(training_step_of(only1, rel), training_step_of(repo, rel))
    # and it changes the log-mode loss: the first step's, same weights and batch
    default = _trial(exports, branch, tmp_path_factory, "default")[1]
    included = _trial(exports, branch, tmp_path_factory, "included")[1]
    first = {
        (c["variant"], c["mode"]): c["losses"][:1] for c in default["cells"] + included["cells"]
    }
    assert first["phase1+phase3", "log"] and first["phase1", "log"]
    assert first["phase1+phase3", "log"] != first["phase1", "log"]


# -- validate --network-from ---------------------------------------------------------------


def test_validate_network_from_the_export_shows_bound_at_zero_overflow(repo, tmp_path):
    report = tmp_path / "report"
    result = hdrfix(
        "validate", "--network-from", repo, "--variants", "base,bound", "--steps", "3",
        "--batch", "1", "--size", "32x32", "--eval-batches", "1", "--threads", "1",
        "--report", report,
    )  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads((report / "report.json").read_text())
    metrics = {v["name"]: v["metrics"] for v in data["variants"]}
    assert metrics["base"]["train_overflow_px"] > 0  # so bound's zero could have failed
    assert metrics["bound"]["train_overflow_px"] == metrics["bound"]["eval_overflow_px"] == 0
    assert data["network"]["from"] == str(repo)
