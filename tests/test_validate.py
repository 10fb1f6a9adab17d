"""``hdrfix validate``: base vs patched variants trained side by side, reported and plotted."""

from __future__ import annotations

import gc
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FRAMEWORK, copy_tree, hdrfix, plugin_dir

torch = pytest.importorskip("torch")

from hdrfix.core.plugin import discover
from hdrfix.lang.errors import HdrfixError
from hdrfix.patchedcopy import apply_in_copy
from hdrfix.validate import report as rpt
from hdrfix.validate import run as engine
from hdrfix.validate import variants as variant_specs

PHASES = discover()
# Small and seeded: a few dozen steps on 32x32 frames show every effect in a few seconds.
SMALL = (
    "--steps",
    "40",
    "--batch",
    "2",
    "--size",
    "32x32",
    "--eval-batches",
    "2",
    "--seed",
    "0",
    "--threads",
    "1",
)
MAIN_VARIANTS = ["base", "phase1", "phase1+phase2", "bound"]


# The smallest run that still trains: one frame of 16x16 per step, one held-out batch.
TINY = ("--batch", "1", "--size", "16x16", "--eval-batches", "1", "--threads", "1")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """A run without --report writes to the user's cache: here, a folder of the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _numbers(value, where="report"):
    """Every number in a JSON document, with where it sits."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{where}[{i}]")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate") / "report"
    result = hdrfix("validate", "--variants", ",".join(MAIN_VARIANTS), *SMALL, "--report", out)
    assert result.code == 0, result.err
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return result, out, {v["name"]: v for v in data["variants"]}, data


def _metric(variants, name, key):
    return variants[name]["metrics"][key]


# --- what the run shows --------------------------------------------------------------------


def test_base_overflows(small_run):
    _, _, variants, _ = small_run
    assert _metric(variants, "base", "train_overflow_px") > 0
    assert _metric(variants, "base", "train_steps_with_overflow") > 0
    assert _metric(variants, "base", "train_max_abs_delta_log") > 8.0


def test_phase1_cuts_overflow_and_clamps(small_run):
    _, _, variants, _ = small_run
    base = _metric(variants, "base", "train_overflow_px")
    assert _metric(variants, "phase1", "train_overflow_px") <= 0.2 * base
    assert _metric(variants, "phase1", "train_max_abs_delta_log") <= 8.0 + 1e-5
    assert _metric(variants, "phase1", "train_clamped_share") is not None
    assert _metric(variants, "base", "train_clamped_share") is None  # only with phase1


def test_bound_removes_all_overflow(small_run):
    _, _, variants, _ = small_run
    base = _metric(variants, "base", "train_overflow_px")
    assert _metric(variants, "bound", "train_overflow_px") <= 0.2 * base
    assert _metric(variants, "bound", "train_overflow_px") == 0
    assert _metric(variants, "bound", "eval_overflow_px") == 0
    assert _metric(variants, "bound", "train_steps_with_overflow") == 0


def test_phase2_reports_learned_scale(small_run):
    _, _, variants, _ = small_run
    assert _metric(variants, "phase1+phase2", "learned_scale_init") == pytest.approx(6.0)
    learned = _metric(variants, "phase1+phase2", "learned_scale")
    assert learned is not None and math.isfinite(learned) and learned != 6.0
    assert _metric(variants, "base", "learned_scale") is None
    # the same initial weights everywhere: phase2 only adds its scale
    assert variants["phase1+phase2"]["parameters"] == variants["base"]["parameters"] + 1


def test_each_variant_is_patched_by_the_engine(small_run):
    _, _, variants, _ = small_run
    assert variants["base"]["changed_files"] == []
    assert variants["base"]["phases"] == []
    phase1 = set(variants["phase1"]["changed_files"])
    assert "framework/train/patch_training_framework.py" in phase1
    assert "framework/configs/colleague_training_config.yaml" in phase1
    assert variants["phase1+phase2"]["phases"] == ["phase1", "phase2"]
    assert (
        "framework/src/npu/networks/patch/patch_network.py"
        in variants["phase1+phase2"]["changed_files"]
    )


def test_report_json_is_complete_and_finite(small_run):
    _, _, variants, data = small_run
    assert list(variants) == MAIN_VARIANTS
    numbers = list(_numbers(data))
    assert numbers and all(math.isfinite(v) for _, v in numbers), [
        w for w, v in numbers if not math.isfinite(v)
    ]
    for key in ("hdrfix", "python", "torch", "device", "settings", "memory_method"):
        assert data[key]
    assert data["device"]["type"] == "cpu" and data["device"]["name"]
    assert data["settings"]["steps"] == 40 and data["settings"]["height"] == 32
    for v in variants.values():
        m = v["metrics"]
        assert len(v["curves"]["loss"]) == len(v["curves"]["overflow_px"]) == 40
        assert sum(v["curves"]["overflow_px"]) == m["train_overflow_px"]
        assert sum(v["delta_log_hist"]["counts"]) == 2 * 2 * 3 * 32 * 32
        assert m["step_ms"] > 0 and m["train_step_ms"] > 0 and m["peak_memory_mib"] >= 0
        assert 0 <= m["eval_frame_error"] < 1 and 0 <= m["eval_hole_error"] < 2
    assert set(data["relative_to_base"]) == set(variants) - {"base"}
    rel = data["relative_to_base"]["phase1"]["train_overflow_px"]
    assert -1.0 <= rel <= -0.8


def test_report_png_tells_the_story(small_run):
    _, out, _, data = small_run
    png = (out / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 20_000
    fig = rpt.figure(data)  # the figure report.png was drawn from, rebuilt from report.json
    assert [ax.get_title() for ax in fig.axes] == list(rpt.PANELS)
    assert not any("loss" in ax.get_title() + ax.get_ylabel() for ax in fig.axes)
    headline, errors, curves, hist = fig.axes
    n = len(data["variants"])
    names = [v["name"] for v in data["variants"]]
    # the headline: one bar per variant on a log scale, the count on it exactly report.json's
    assert headline.get_yscale() == "symlog" and len(headline.patches) == n
    printed = [text.get_text().split()[0] for text in headline.texts]
    assert printed == [f"{v['metrics']['train_overflow_px']:,}" for v in data["variants"]]
    assert printed[names.index("bound")] == "0"  # zero is drawn (at the floor), not lost
    assert "(-100.0%)" in headline.texts[names.index("bound")].get_text()
    # frame and hole error side by side per variant, the hole bars hatched
    assert len(errors.patches) == 2 * n
    frame_bars, hole_bars = errors.patches[0::2], errors.patches[1::2]
    assert all(p.get_x() < q.get_x() for p, q in zip(frame_bars, hole_bars, strict=True))
    assert {p.get_hatch() for p in hole_bars} == {rpt.HOLE_HATCH}
    assert [p.get_height() for p in hole_bars] == pytest.approx(
        [v["metrics"]["eval_hole_error"] for v in data["variants"]]
    )
    # curves differ by line style (or marker), not by colour alone (the unlabelled line is
    # the zero reference)
    drawn = [line for line in curves.get_lines() if not line.get_label().startswith("_")]
    looks = {(line.get_linestyle(), line.get_marker()) for line in drawn}
    assert len(drawn) == n and len(looks) == n
    assert len({str(p.get_linestyle()) for p in hist.patches}) == n
    last = [line.get_ydata()[-1] for line in drawn]
    assert last == [v["metrics"]["train_overflow_px"] for v in data["variants"]]
    # a variant without overflow is seen: its curve lies above the axis, the legend gives
    # every total, and its bar of no height is a thick line in its colour above the axis
    assert curves.get_ylim()[0] < 0 and headline.get_ylim()[0] < 0
    legend = [t.get_text() for t in curves.get_legend().get_texts()]
    assert legend == [
        f"{v['name']}: {v['metrics']['train_overflow_px']:,}" for v in data["variants"]
    ]
    zero_bars = [c for c in headline.collections if c.get_label() == rpt.ZERO_BAR]
    zeros = [i for i, v in enumerate(data["variants"]) if v["metrics"]["train_overflow_px"] == 0]
    assert names.index("bound") in zeros and len(zero_bars) == len(zeros)
    for i, bar in zip(zeros, zero_bars, strict=True):
        (segment,) = bar.get_segments()
        assert segment[0][1] == segment[1][1] == 0 and segment[0][0] < i < segment[1][0]
        assert bar.get_linewidth()[0] >= 3 and bar.get_color()[0][:3] == pytest.approx(
            headline.patches[i].get_facecolor()[:3]
        )


def test_terminal_table(small_run):
    result, out, variants, _ = small_run
    lines = result.out.splitlines()
    header = lines[0].split()
    assert header == ["metric", *variants]
    overflow_row = next(line for line in lines if line.startswith("overflow px, train"))
    assert "%)" in overflow_row
    hole_row = next(line for line in lines if line.startswith("hole error"))
    assert len(hole_row.split()) >= 3 + len(variants) - 1
    assert str(out / "report.json") in result.out
    # stderr is no terminal here: no progress bar
    assert "training" not in result.err


def test_progress_line_on_a_terminal(tmp_path, monkeypatch):
    import io
    import types

    from hdrfix.validate import cli as validate_cli
    from hdrfix.validate import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(validate_cli, "sys", types.SimpleNamespace(stderr=terminal))
    monkeypatch.setattr(progress, "REDRAW_S", 0)  # redrawn at every step
    result = hdrfix(
        "validate", "--variants", "base,bound", "--steps", "3", *TINY, "--report", tmp_path
    )
    assert result.code == 0, result.err
    shown = terminal.getvalue()
    # one line rewritten in place: which variant of how many, then the timing rounds
    assert "\n" not in shown and shown.startswith("\r")
    assert "validate: base (variant 1 of 2) step 1/3" in shown
    assert "validate: bound (variant 2 of 2) step 3/3" in shown
    assert "round 4/4" in shown  # the last timing round
    assert shown.endswith("\r") and not shown.split("\r")[-2].strip()  # cleared at the end


def test_progress_lines_without_a_terminal(tmp_path, monkeypatch):
    from hdrfix.validate import cli as validate_cli
    from hdrfix.validate import progress

    monkeypatch.setattr(validate_cli, "PROGRESS_INTERVAL_S", 0)  # a line at every step
    monkeypatch.setattr(progress, "PACE_AFTER_S", 0)  # the time left, however fast the run
    result = hdrfix(
        "validate", "--variants", "base,bound", "--steps", "3", *TINY, "--report", tmp_path
    )
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("validate: ")]
    steps = [line.split(",")[0] for line in lines if " step " in line]
    assert steps == [
        f"validate: {v} (variant {n} of 2) step {i}/3"
        for n, v in enumerate(("base", "bound"), 1)
        for i in (1, 2, 3)
    ]
    assert lines[-1].startswith("validate: timing the steps") and "round 4/4" in lines[-1]
    assert lines[-1].endswith("about 0 s left")


def _paced(setup: float, step_s: float, variants: int, steps: int, rounds: int, interval=5.0):
    """What a Progress prints for a run whose setup takes ``setup`` s and each step ``step_s``."""
    import io

    from hdrfix.validate.progress import Progress

    now = [100.0]
    out = io.StringIO()
    names = [f"v{i}" for i in range(variants)]
    progress = Progress(
        out, names, steps, rounds, terminal=False, interval=interval, clock=lambda: now[0]
    )
    now[0] += setup
    for name in names:
        for step in range(steps):
            now[0] += step_s
            progress.step(name, step)
    for r in range(rounds):
        now[0] += step_s * variants
        progress.timing(r)
    return out.getvalue().splitlines()


def test_progress_lines_are_spaced_by_the_interval():
    lines = _paced(setup=0.0, step_s=0.5, variants=1, steps=40, rounds=0)
    assert [line.split(",")[0] for line in lines] == [
        f"validate: v0 (variant 1 of 1) step {n}/40" for n in (10, 20, 30, 40)
    ]
    assert [line.split(", ")[1] for line in lines] == ["5 s", "10 s", "15 s", "20 s"]


def test_the_time_left_leaves_the_setup_out():
    """A 16 s run showed 2:46 left: the setup before the first step was counted as if
    every step cost as much. The time left is the work left at the pace of the steps."""
    # 30 s of setup, then 3 variants x 100 steps and 10 timing rounds at 0.1 s a step
    lines = _paced(setup=30.0, step_s=0.1, variants=3, steps=100, rounds=10, interval=0)
    first = lines[0]
    assert first.startswith("validate: v0 (variant 1 of 3) step 1/100, 30 s")
    # the work left: 3 x (100 steps + 10 rounds), of which 150 are done, 0.1 s each
    elapsed = {line.split(",")[0]: line for line in lines}
    halfway = elapsed["validate: v1 (variant 2 of 3) step 50/100"]
    left = 3 * 110 - 150  # units after this step
    assert halfway.endswith(f"about {round(left * 0.1)} s left")
    assert lines[-1].endswith("about 0 s left")


def test_clock_text():
    from hdrfix.validate.progress import clock_text

    assert [clock_text(s) for s in (0.4, 42, 166, 3723)] == ["0 s", "42 s", "2:46", "1:02:03"]


def test_default_report_folder_is_outside_the_current_folder(tmp_path, monkeypatch):
    cwd = tmp_path / "repo"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = hdrfix("validate", "--variants", "base", "--steps", "1", *TINY)
    assert result.code == 0, result.err
    folder = tmp_path / "cache" / "hdrfix" / "validate"  # XDG_CACHE_HOME: see _own_cache
    assert (folder / "report.json").is_file() and (folder / "report.png").is_file()
    assert f"report: {folder / 'report.json'}" in result.out
    assert list(cwd.iterdir()) == []


def test_report_folder_that_cannot_be_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    _one_line_error(
        hdrfix("validate", "--variants", "base", "--report", blocker / "sub"),
        "cannot create the report folder",
    )


# --- repeatable, fair ------------------------------------------------------------------------


def _settings(**kw) -> engine.Settings:
    base = {
        "variants": variant_specs.parse_variants("base", PHASES),
        "steps": 4,
        "batch": 1,
        "height": 16,
        "width": 16,
        "eval_batches": 1,
        "threads": 1,
    }
    base.update(kw)
    return engine.Settings(**base)


def test_same_seed_same_numbers():
    a = engine.run(_settings(), PHASES)["variants"][0]
    b = engine.run(_settings(), PHASES)["variants"][0]
    c = engine.run(_settings(seed=1), PHASES)["variants"][0]
    assert a["curves"] == b["curves"]
    assert a["delta_log_hist"] == b["delta_log_hist"]
    assert a["curves"]["loss"] != c["curves"]["loss"]


def _table_without_measurements(out: str) -> list[str]:
    """The table's rows but the measured ones (step time and memory vary run to run)."""
    rows = out.split("\n\n")[0].splitlines()
    return [row for row in rows if not row.startswith(("step time", "peak memory"))]


def test_the_same_table_at_any_thread_count(tmp_path):
    """--threads is how many variants train at once: the figures do not depend on it (with
    2 torch threads, bound's frame error came out -3.8% against +10.7% with 1). The network
    prints at every forward: its lines, from this process (1) or from the workers (2), go to
    validate.log in the report folder and flood no terminal."""
    repo = copy_tree(FRAMEWORK, tmp_path / "chatty")
    net = repo / "src/npu/networks/patch/patch_network.py"
    text = net.read_text(encoding="utf-8")
    anchor = "        h, w = x.shape[-2:]\n"
    assert anchor in text
    net.write_text(text.replace(anchor, "        print('chatty network')\n" + anchor), "utf-8")
    args = ("--variants", "base,bound", "--network-from", repo, "--steps", "12")
    args += ("--batch", "2", "--size", "16x16", "--eval-batches", "2", "--seed", "3")
    runs = {t: hdrfix("validate", *args, "--threads", t, "--report", tmp_path / t) for t in "12"}
    assert all(r.code == 0 for r in runs.values()), [r.err for r in runs.values()]
    tables = {t: _table_without_measurements(r.out) for t, r in runs.items()}
    assert len(tables["1"]) == 12 and tables["1"] == tables["2"]
    reports = {t: json.loads((tmp_path / t / "report.json").read_text("utf-8")) for t in "12"}
    for one, two in zip(reports["1"]["variants"], reports["2"]["variants"], strict=True):
        assert one["curves"] == two["curves"] and one["delta_log_hist"] == two["delta_log_hist"]
    assert [reports[t]["device"]["workers"] for t in "12"] == [1, 2]
    assert "one variant at a time, 1 torch thread)" in runs["1"].out
    assert "2 variants at a time, 1 torch thread each)" in runs["2"].out
    assert "threads)" not in runs["1"].out
    for t, result in runs.items():
        assert "chatty" not in result.out + result.err
        log = tmp_path / t / "validate.log"
        assert log.read_text(encoding="utf-8").count("chatty network") >= 2 * 12
        assert f"{log} (what the framework printed)" in result.out


def test_quiet_shows_the_table_only(tmp_path, monkeypatch):
    from hdrfix.validate import cli as validate_cli

    monkeypatch.setattr(validate_cli, "PROGRESS_INTERVAL_S", 0)  # a line at every step, unquiet
    args = ("validate", "--variants", "base", "--steps", "2", *TINY, "--report", tmp_path)
    loud, quiet = hdrfix(*args), hdrfix("-q", *args)
    assert loud.code == quiet.code == 0, quiet.err
    assert "validate: base (variant 1 of 1) step 1/2" in loud.err
    assert quiet.err == ""
    assert quiet.out.splitlines()[0].split() == ["metric", "base"]
    assert "overflow = elements" in loud.out and "overflow = elements" not in quiet.out
    assert f"report: {tmp_path / 'report.json'}" in quiet.out


def test_threads_come_from_what_the_machine_gives(tmp_path, monkeypatch):
    from hdrfix.validate import threads

    # two cores, one kept busy by another process: one variant at a time
    assert threads.free_cores(cores=2, load=1.0) == 1
    assert threads.free_cores(cores=2, load=0.1) == 2
    assert threads.free_cores(cores=2, load=7.5) == 1
    assert threads.free_cores(cores=16, load=3.2) == 13
    monkeypatch.setattr(threads, "free_cores", lambda: 4)
    assert threads.choose_workers(None, 5, "cpu") == 4
    assert threads.choose_workers(None, 2, "cpu") == 2  # never more than the variants
    assert threads.choose_workers(None, 5, "cuda") == 1
    assert threads.choose_workers(3, 5, "cpu") == 3  # --threads as given
    quota = tmp_path / "cpu.max"
    for text, cpus in (("150000 100000\n", 2), ("max 100000\n", None), ("x y\n", None)):
        quota.write_text(text, encoding="ascii")
        assert threads._cgroup_quota(quota) == cpus
    monkeypatch.setattr(threads, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    quota.write_text("100000 100000\n", encoding="ascii")
    assert threads.core_count() == 1


def test_run_leaves_the_process_as_it_was():
    frozen = gc.get_freeze_count()
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    before = {n for n in sys.modules if n.split(".")[0] in ("train", "src", "tools")}
    path = list(sys.path)
    # OpenCV may be installed (make field) and imported by an earlier test: take it out for
    # the run, so that an import of the network's package __init__ would show
    opencv = sys.modules.pop("cv2", None)
    try:
        engine.run(_settings(threads=1), PHASES)
        assert "cv2" not in sys.modules  # the network's package __init__ never ran
    finally:
        if opencv is not None:
            sys.modules["cv2"] = opencv
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert gc.get_freeze_count() == frozen  # what was frozen for the run is thawed
    assert {n for n in sys.modules if n.split(".")[0] in ("train", "src", "tools")} == before
    assert sys.path == path
    assert not list(FRAMEWORK.rglob("*.hdrfix-tmp"))


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_collector_spares_old_objects_and_still_frees_the_run_s_cycles():
    """Objects from before the run are frozen, out of the collector's walk; a cycle the run
    makes is still freed by a collection inside, and the old objects are thawed after."""
    import weakref

    from hdrfix.validate.gcfreeze import collector_spared

    assert gc.get_freeze_count() == 0
    old = _Cycle()
    with collector_spared() as spare_more:
        assert gc.get_freeze_count() > 0 and gc.is_tracked(old)
        new = _Cycle()
        gone = weakref.ref(new)
        del new
        assert gc.collect() >= 1 and gone() is None
        kept = _Cycle()
        kept_ref = weakref.ref(kept)
        garbage = weakref.ref(_Cycle())  # a cycle no one holds when spare_more is called
        frozen = gc.get_freeze_count()
        spare_more()  # kept is frozen from here: a collection no longer frees it
        assert garbage() is None  # garbage is collected, not frozen for the whole run
        assert gc.get_freeze_count() > frozen
        del kept
        gc.collect()
        assert kept_ref() is not None
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert kept_ref() is None  # thawed, and freed at the next collection
    del old


def test_the_collector_keeps_a_freeze_the_process_made_itself():
    from hdrfix.validate.gcfreeze import collector_spared

    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        with collector_spared() as spare_more:
            spare_more()
            assert gc.get_freeze_count() == mine
        assert gc.get_freeze_count() == mine
    finally:
        gc.unfreeze()


def test_deterministic_switch_does_not_load_the_compiler():
    """``torch.use_deterministic_algorithms`` imports inductor and dynamo (1.6 s a process
    here); validate sets torch's flag without them, and turns it on and back off all the same."""
    code = (
        "import sys, torch\n"
        "from hdrfix.validate.threads import torch_settings\n"
        "with torch_settings('cpu', 1):\n"
        "    inside = torch.are_deterministic_algorithms_enabled()\n"
        "print(inside, torch.are_deterministic_algorithms_enabled(),"
        " 'torch._inductor.config' in sys.modules, 'torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "False", "False", "False"]


def test_deterministic_switch_keeps_a_loaded_compiler_in_step(monkeypatch):
    """Where inductor is loaded already, its config hears of the switch: the public call."""
    from hdrfix.validate import threads

    calls = []
    monkeypatch.setitem(sys.modules, "torch._inductor.config", object())
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda *a, **k: calls.append(a))
    with threads.torch_settings("cpu", 1):
        pass
    assert calls == [(True,), (torch.are_deterministic_algorithms_enabled(),)]


# --- variants ------------------------------------------------------------------------------


def test_parse_variants_orders_phases():
    variants = variant_specs.parse_variants("base, phase2+phase1 ,phase1", PHASES)
    assert [(v.name, v.phases) for v in variants] == [
        ("base", ()),
        ("phase2+phase1", ("phase1", "phase2")),
        ("phase1", ("phase1",)),
    ]


@pytest.mark.parametrize(
    "spec, words",
    [
        ("base,nosuch", "unknown phase 'nosuch'"),
        ("phase1,phase1", "listed twice"),
        ("base+phase1", "base means no phase"),
        ("phase1+phase1", "twice"),
        ("", "empty"),
    ],
)
def test_bad_variants(spec, words):
    with pytest.raises(HdrfixError, match=words.replace("(", r"\(")):
        variant_specs.parse_variants(spec, PHASES)


def test_default_variants_come_from_the_phases():
    variants, notes = variant_specs.default_variants(PHASES)
    assert not notes
    assert variants[0].name == "base" and variants[0].phases == ()
    assert sorted(v.phases[-1] for v in variants[1:]) == sorted(PHASES)  # one per phase
    rows = [(v.name, v.residual_bound, v.network_parameters) for v in variants]
    for what in (  # what the built-ins declare, each variant with its requirements
        ("bound", None, ()),
        ("phase1", 8.0, ()),
        ("phase1+phase2", 8.0, ("residual_output_scale",)),
        ("phase1+phase3", 8.0, ()),
    ):
        assert what in rows


def test_default_variants_skip_a_phase_whose_requirement_is_not_installed():
    without = {name: cls for name, cls in PHASES.items() if name != "phase1"}
    variants, notes = variant_specs.default_variants(without)
    assert [v.name for v in variants] == ["base", "bound"]
    assert notes == [
        "skipped variant phase2: a phase requires unknown phase 'phase1'",
        "skipped variant phase3: a phase requires unknown phase 'phase1'",
    ]


def test_relative_change_format():
    assert rpt.format_change(18784, 102) == "-99.5%"
    assert rpt.format_change(0.132, 0.753) == "+470.5%"
    assert rpt.format_change(10, 1000) == "+9,900%"
    assert rpt.format_change(5, 5) == "="
    # too small for one decimal: the direction stays, never "+-0.0%"
    assert rpt.format_change(0.4214, 0.42141) == "+0.0%"
    assert rpt.format_change(0.4214, 0.42139) == "-0.0%"
    assert rpt.format_change(0, 3) == "new"
    assert rpt.format_change(None, 3) == ""
    assert rpt.relative(0, 0) is None and rpt.relative(4, 2) == -0.5


# --- bad input: one line, exit 2 --------------------------------------------------------------


#: validate's advice on a loaded machine (hdrfix.validate.cli._busy_note): it depends on what
#: else runs on the test machine, not on the input, so the one-line check leaves it aside.
BUSY_NOTE = "hdrfix: note: the CPU is busy"


def _one_line_error(result, *words):
    assert result.code == 2, (result.out, result.err)
    lines = [line for line in result.err.strip().splitlines() if not line.startswith(BUSY_NOTE)]
    assert len(lines) == 1, result.err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--variants", "base,phase9"], ["unknown phase 'phase9'"]),
        (["--size", "32by32"], ["--size takes HxW"]),
        (["--size", "4x4"], ["at least 8x8"]),
        (["--steps", "0"], ["--steps must be at least 1"]),
        (["--network", "x.py"], ["--network needs --network-from"]),
    ],
)
def test_bad_arguments(args, words, tmp_path):
    _one_line_error(hdrfix("validate", *args, "--report", tmp_path / "r"), *words)
    assert not (tmp_path / "r").exists()


def test_phase_without_its_requirement():
    line = _one_line_error(
        hdrfix("validate", "--variants", "base,phase2"), "phase2 requires phase1"
    )
    assert "write phase1+phase2" in line


def test_requirement_of_a_third_party_phase(tmp_path):
    plugins = plugin_dir(tmp_path / "plugins", "extra", "", requires=("phase1",))
    line = _one_line_error(
        hdrfix("--plugins", plugins, "validate", "--variants", "extra"), "extra requires phase1"
    )
    assert "write phase1+extra" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cuda_without_gpu(tmp_path):
    _one_line_error(
        hdrfix("validate", "--device", "cuda", "--report", tmp_path / "r"),
        "--device cuda",
        "use --device cpu",
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_cuda_run(tmp_path):
    result = hdrfix(
        "validate",
        "--device",
        "cuda",
        "--variants",
        ",".join(MAIN_VARIANTS),
        *SMALL,
        "--report",
        tmp_path,
    )
    assert result.code == 0, result.err
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["device"]["type"] == "cuda" and data["device"]["cuda"]
    assert data["memory_method"] == "cuda"
    by_name = {v["name"]: v for v in data["variants"]}
    assert by_name["base"]["metrics"]["train_overflow_px"] > 0
    assert by_name["base"]["metrics"]["peak_memory_mib"] > 0
    assert by_name["bound"]["metrics"]["train_overflow_px"] == 0


def _validate_from(repo, variants, report, *options):
    """``validate --network-from repo``, the call each test of a user's network makes."""
    return hdrfix(
        "validate", "--variants", variants, "--network-from", repo, *options, "--report", report
    )


def _report(result, out) -> dict:
    """The report.json of a run that must have succeeded."""
    assert result.code == 0, result.err
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_network_from_without_network(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "model.py").write_text("class Other:\n    pass\n", encoding="utf-8")
    _one_line_error(
        _validate_from(repo, "base", tmp_path / "r"),
        "--network-from",
        "PatchNetwork",
    )
    assert not (tmp_path / "r").exists()  # a failed run leaves no report folder behind
    _one_line_error(
        hdrfix("validate", "--network-from", tmp_path / "missing"), "--network-from: no such folder"
    )


def _user_repo(tmp_path: Path, forward: str | None = None) -> Path:
    """A user's framework: the network moved into a package of its own, built from a sibling
    module through a relative import, with its own network: section in the config."""
    repo = copy_tree(FRAMEWORK, tmp_path / "user")
    old = repo / "src/npu/networks/patch/patch_network.py"
    pkg = repo / "models" / "inpaint"
    pkg.mkdir(parents=True)
    (repo / "models" / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    text = old.read_text(encoding="utf-8")
    start, end = text.index("class GatedConv2d"), text.index("class PatchNetwork")
    (pkg / "blocks.py").write_text(
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
        + text[start:end],
        encoding="utf-8",
    )
    net = text[:start] + "from .blocks import GatedConv2d\n\n\n" + text[end:]
    if forward is not None:
        anchor = "        h, w = x.shape[-2:]\n"
        net = net.replace(anchor, forward + anchor)
    (pkg / "net.py").write_text(net, encoding="utf-8")
    old.unlink()
    trainer = repo / "train/patch_training_framework.py"
    trainer.write_text(
        trainer.read_text(encoding="utf-8").replace(
            "from src.npu.networks.patch.patch_network import", "from models.inpaint.net import"
        ),
        encoding="utf-8",
    )
    config = repo / "configs/colleague_training_config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("base_channels: 8 ", "base_channels: 4 "),
        encoding="utf-8",
    )
    return repo


def test_network_from_user_repo(tmp_path):
    repo = _user_repo(tmp_path)
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    out = tmp_path / "report"
    result = _validate_from(repo, "base,phase1,phase1+phase2", out, "--steps", "3", *TINY)
    data = _report(result, out)
    assert data["network"]["file"] == "models/inpaint/net.py"
    assert data["network"]["kwargs"] == {
        "input_channels": 7,
        "output_channels": 3,
        "base_channels": 4,
        "residual_scale_factor": 1.0,
    }
    by_name = {v["name"]: v for v in data["variants"]}
    # base_channels 4: a quarter of the fixture network's parameters, roughly
    fixture_params = sum(p.numel() for p in _fixture_network().parameters())
    assert by_name["base"]["parameters"] < fixture_params / 2
    assert "network-repo/models/inpaint/net.py" in by_name["phase1+phase2"]["changed_files"]
    assert by_name["phase1+phase2"]["metrics"]["learned_scale"] is not None
    # the user's repository itself is untouched
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before


def test_network_only_repo(tmp_path):
    """A repository holding just the network: variants that leave the network alone run with
    it unpatched (and say so); a variant that edits the network cannot, and says why."""
    repo = tmp_path / "nets"
    (repo / "arch").mkdir(parents=True)
    shutil.copy(FRAMEWORK / "src/npu/networks/patch/patch_network.py", repo / "arch" / "net.py")
    out = tmp_path / "report"
    result = _validate_from(repo, "base,phase1", out, "--steps", "2", *TINY)
    data = _report(result, out)
    assert "note: phase1: its phases leave the network as it is" in result.out
    assert data["network"] == {"from": str(repo), "file": "arch/net.py", "kwargs": {}}
    assert len(data["notes"]) == 1
    _one_line_error(
        _validate_from(repo, "base,phase1+phase2", out),
        "phase1+phase2 edits the network",
        "no config found",
    )


def test_network_from_the_field_layout(tmp_path, monkeypatch):
    """The network in its package, whose __init__ imports siblings that need OpenCV (made
    unimportable here, installed or not): validate loads the network file itself and never
    runs that __init__."""
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` raises ImportError
    repo = copy_tree(FRAMEWORK, tmp_path / "field")
    assert "import cv2" in (repo / "src/npu/networks/patch/hole_detector.py").read_text("utf-8")
    out = tmp_path / "report"
    data = _report(_validate_from(repo, "base", out, "--steps", "2", *TINY), out)
    assert data["network"]["file"] == "src/npu/networks/patch/patch_network.py"
    assert data["network"]["kwargs"]["input_channels"] == 7
    assert sys.modules["cv2"] is None


def test_network_from_with_other_input_channels(tmp_path):
    """The trainer feeds 7 channels; a network built for 6 is refused before training."""
    repo = _user_repo(tmp_path)
    config = repo / "configs/colleague_training_config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("input_channels: 7 ", "input_channels: 6 "),
        encoding="utf-8",
    )
    _one_line_error(
        _validate_from(repo, "base", tmp_path / "r", *TINY, "--steps", "1"),
        "--network-from",
        "declares input_channels=6",
        "the trainer feeds 7",
    )


def _fixture_network():
    sys.path.insert(0, str(FRAMEWORK))
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location(
            "_fixture_net_for_test", FRAMEWORK / "src/npu/networks/patch/patch_network.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.PatchNetwork()
    finally:
        sys.path.remove(str(FRAMEWORK))


@pytest.mark.parametrize(
    "forward, words",
    [
        ("        raise RuntimeError('boom')\n", ["forward fails", "RuntimeError: boom"]),
        ("        x = x[:, :2]\n", ["forward fails"]),
    ],
)
def test_network_from_failing_forward(tmp_path, forward, words):
    repo = _user_repo(tmp_path, forward)
    _one_line_error(
        _validate_from(repo, "base", tmp_path / "r", "--steps", "1", "--size", "16x16"),
        "--network-from",
        *words,
    )


def test_network_from_wrong_output_shape(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "net.py").write_text(
        "import torch.nn as nn\n\n\nclass PatchNetwork(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(7, 1, 1)\n\n"
        "    def forward(self, x):\n        return self.conv(x)\n",
        encoding="utf-8",
    )
    _one_line_error(
        _validate_from(repo, "base", tmp_path / "r", "--size", "16x16"),
        "--network-from",
        "residual of shape",
    )


# --- the command stays light ------------------------------------------------------------------


def test_help_does_not_import_torch():
    code = (
        "import sys; from hdrfix.cli import main\n"
        "try:\n    main(['validate', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--network-from" in done.stdout and "--variants" in done.stdout


def test_without_torch_says_how_to_get_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    _one_line_error(
        hdrfix("validate", "--steps", "1"), "validate needs torch", "pip install 'hdrfix[torch]'"
    )


def test_help_defaults_match_the_engine():
    from hdrfix.validate import cli

    assert cli.DEFAULT_STEPS == engine.DEFAULT_STEPS
    assert cli.DEFAULT_BATCH == engine.DEFAULT_BATCH
    assert "x".join(map(str, engine.DEFAULT_SIZE)) == cli.DEFAULT_SIZE
    assert cli.DEFAULT_EVAL_BATCHES == engine.DEFAULT_EVAL_BATCHES


def test_core_count():
    from hdrfix.validate.threads import core_count

    assert 1 <= core_count() <= (os.cpu_count() or 1)


def test_bench_script_runs(capsys):
    import runpy

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_validate.py"
    main = runpy.run_path(str(bench), run_name="bench_validate")["main"]
    assert (
        main(
            [
                "--variants",
                "base,phase1",
                "--runs",
                "1",
                "--rounds",
                "2",
                "--size",
                "16x16",
                "--batch",
                "1",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| variant | step ms |" in out and "| phase1 |" in out
    assert "phase1's clamp" in out and "target < 2%" in out


def test_validate_applies_phases_from_inside_a_checkout_of_the_framework(tmp_path, monkeypatch):
    """Run from a folder holding the same relative paths as the fixture (a user's checkout),
    the scratch copy is patched, not refused as "outside the repository"."""
    monkeypatch.chdir(copy_tree(FRAMEWORK, tmp_path / "users-checkout"))
    scratch = copy_tree(FRAMEWORK, tmp_path / "scratch")
    changed = apply_in_copy(scratch, ["phase1"], PHASES, variant_specs.trainer_only(scratch, {}))
    assert "train/patch_training_framework.py" in changed
