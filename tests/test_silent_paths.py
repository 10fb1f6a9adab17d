"""No silent path (issue 19, items 6, 7, 13; issue 18, item 6): every exponential of a value that
may come from the network is clamped where hdrfix can, or listed as not handled with its
file:line and ``--check`` at 1; a walrus is a definition like any other; a residual computed in a
generator is clamped there; a dict entry or a helper's log image is listed, never "no
log-domain reconstruction found". Each patched trainer is also run, Mode A and Mode B, with a
blown-up network: the residual that reaches the exp stays within the clamp.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import hdrfix
from test_field_shapes import HEAD as FIELD_HEAD
from test_field_shapes import repo_with as field_repo

TRAINER = "train/patch_training_framework.py"
CLAMP = "torch.clamp(delta_log, min=-8.0, max=8.0)"
HEAD = "import math\n" + FIELD_HEAD  # test_field_shapes' small trainer, with math for math.e
MODE_A = "self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max"
MODE_B = "(self.log_delta_scale * denom) * torch.tanh(pred)"


def repo_with(tmp_path: Path, body: str, head: str = HEAD) -> Path:
    return field_repo(tmp_path, body, head=head)


def plan_of(root: Path, phase: str) -> dict:
    result = hdrfix("apply", phase, "--repo", root, "--dry-run", "--format", "json")
    assert result.code == 0, result.err
    return next(p for p in json.loads(result.out)["phases"] if p["phase"] == phase)


def listed_lines(root: Path, phase: str) -> list[int]:
    return sorted(i["line"] for i in plan_of(root, phase)["not_handled"])


def line_of(root: Path, needle: str) -> int:
    lines = (root / TRAINER).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if needle in line)


def run_patched(root: Path, steps=("training_step",)) -> list[float]:
    """Run the patched trainer's steps, Mode A (cap 16) and Mode B (cap 0), with a network
    whose raw output is huge: the largest |residual| each step recorded in ``self.seen``."""
    torch = pytest.importorskip("torch")
    namespace: dict = {}
    exec(compile((root / TRAINER).read_text(), TRAINER, "exec"), namespace)
    seen = []
    for abs_max in (16.0, 0.0):
        trainer = object.__new__(namespace["Trainer"])
        trainer.log_delta_abs_max = abs_max
        trainer.log_delta_alpha = 1.2
        trainer.log_delta_scale = 0.9
        trainer.patch_network = lambda x, **kw: torch.full_like(x, 50.0)
        trainer.seen = None
        batch = torch.rand(1, 3, 4, 4) * 1e4 + 1e-3
        for step in steps:
            out = getattr(trainer, step)(batch, 0)
            assert out is not None
            seen.append(float(trainer.seen.abs().max()))
    return seen


def check_code(root: Path) -> int:
    return hdrfix("apply", "phase1", "--repo", root, "--check").code


# ------------------------------------------------------------------ every exponential (19.7)

SPELLINGS = [
    "out = torch.e ** Ln_hat",
    "out = math.e ** Ln_hat",
    "out = Ln_hat.clone().exp_()",
    "Ln_hat.exp_()\nout = Ln_hat",
    "out = torch.pow(math.e, Ln_hat)",
    "out = torch.pow(2.718281828, Ln_hat)",
    'out = getattr(torch, "exp")(Ln_hat)',
    "e = torch.exp\nout = e(Ln_hat)",
    "out = torch.exp2(Ln_hat)",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_exp_is_a_reconstruction_phase1_clamps(
    tmp_path: Path, spelling: str
) -> None:
    body = f"delta_log = {MODE_A}\nself.seen = delta_log\nLn_hat = log_img + delta_log\n"
    root = repo_with(tmp_path, body + spelling + "\nreturn out\n")
    assert check_code(root) == 1
    assert hdrfix("apply", "phase1", "--repo", root).code == 0
    text = (root / TRAINER).read_text()
    assert text.count(CLAMP) == 1
    assert text.index(CLAMP) < text.index("self.seen = delta_log")
    assert check_code(root) == 0
    assert max(run_patched(root)) <= 8.0 + 1e-6
    # and bound finds the same reconstruction, and bounds it (exp2: its ceiling is not the
    # natural log bound writes, so it is listed)
    if "exp2" in spelling:
        assert listed_lines(root, "bound") == [line_of(root, "Ln_hat = log_img")]
        return
    assert hdrfix("apply", "bound", "--repo", root).code == 0
    assert "Ln_hat = torch.clamp(Ln_hat, max=" in (root / TRAINER).read_text()
    assert hdrfix("apply", "bound", "--repo", root, "--check").code == 0


@pytest.mark.parametrize(
    "use",
    [
        "out = torch.e ** (log_img + delta_log)",
        "out = torch.pow(math.e, log_img + delta_log)",
        "out = (log_img + delta_log).exp_()",
    ],
)
def test_bound_lists_an_inline_sum_it_cannot_rewrite(tmp_path: Path, use: str) -> None:
    """phase1 clamps the residual; bound cannot wrap a ``**``: it says so at the line."""
    root = repo_with(tmp_path, f"delta_log = {MODE_A}\n{use}\nreturn out\n")
    plan = plan_of(root, "bound")
    assert [i["line"] for i in plan["not_handled"]] == [line_of(root, "out =")], plan
    assert hdrfix("apply", "bound", "--repo", root, "--check").code == 1
    assert hdrfix("apply", "phase1", "--repo", root).code == 0
    assert CLAMP in (root / TRAINER).read_text()


@pytest.mark.parametrize(
    "use",
    [
        "f = torch.exp\nout = list(map(f, [Ln_hat]))[0]",
        "out = torch.exp(Ln_hat, out=torch.empty_like(Ln_hat))",
    ],
)
def test_an_exp_hdrfix_cannot_read_is_listed(tmp_path: Path, use: str) -> None:
    body = f"delta_log = {MODE_A}\nLn_hat = log_img + delta_log\n{use}\nreturn out\n"
    root = repo_with(tmp_path, body)
    phase1 = plan_of(root, "phase1")
    if "map(" in use:
        assert line_of(root, "out = list(map") in listed_lines(root, "phase1"), phase1
    else:  # out= is read; the others are exps of what is not the network's: nothing listed
        assert phase1["not_handled"] == [], phase1
        assert hdrfix("apply", "phase1", "--repo", root).code == 0
        assert check_code(root) == 0


@pytest.mark.parametrize(
    "where",
    [
        # the residual in a dict, exponentiated from there
        "out = {}\nout['delta_log'] = delta_log\nreturn torch.exp(log_img + out['delta_log'])\n",
        # the log image in a dict
        "out = {'Ln': log_img + delta_log}\nreturn torch.exp(out['Ln'])\n",
    ],
)
def test_a_residual_kept_in_a_dict_is_listed_not_missing(tmp_path: Path, where: str) -> None:
    root = repo_with(tmp_path, f"delta_log = {MODE_A}\n{where}")
    assert line_of(root, "return torch.exp") in listed_lines(root, "phase1")
    assert line_of(root, "return torch.exp") in listed_lines(root, "bound")
    status = hdrfix("status", "phase1", "--repo", root)
    assert f"not handled: {TRAINER}:{line_of(root, 'return torch.exp')}" in status.out
    assert "no log-domain reconstruction found" not in status.out + status.err
    assert check_code(root) == 1


def test_a_listing_beside_a_site_keeps_the_sites_own_label(tmp_path: Path) -> None:
    body = (
        f"delta_log = {MODE_A}\n"
        "kept = {'ln': log_img + delta_log}\n"
        "side = torch.exp(kept['ln'])\n"
        "return torch.exp(log_img + delta_log), side\n"
    )
    root = repo_with(tmp_path, body)
    plan = plan_of(root, "phase1")
    assert [i["line"] for i in plan["not_handled"]] == [line_of(root, "side = torch.exp")]
    assert [i["what"] for i in plan["items"] if i["path"] == TRAINER] == [
        "Trainer.training_step: clamp delta_log"
    ]


HELPER_LOG_HAT = """\
import torch


class Trainer:
    def _log_hat(self, batch):
        log_img = torch.log(torch.clamp(batch, min=0) + 1e-6)
        pred = self.patch_network(log_img)
        delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
        return log_img + delta_log

    def validation_step(self, batch, batch_idx):
        log_hat = self._log_hat(batch)
        return torch.exp(log_hat) - 1e-6
"""


def test_a_log_hat_from_a_helper_exponentiated_elsewhere_is_listed(tmp_path: Path) -> None:
    root = repo_with(tmp_path, "", head=HELPER_LOG_HAT)
    for phase in ("phase1", "bound"):
        assert listed_lines(root, phase) == [line_of(root, "return torch.exp(log_hat)")]
    assert check_code(root) == 1


def test_a_gaussian_window_and_a_ground_truth_are_not_listed(tmp_path: Path) -> None:
    """Sound is not noisy: an exp of an ``arange`` over an ``int`` parameter, and of a log of the
    target, carry nothing from the network."""
    head = HEAD.replace(
        "class Trainer:\n",
        "class Trainer:\n"
        "    def _window(self, size: int):\n"
        "        x = torch.arange(size, dtype=torch.float32) - size // 2\n"
        "        return torch.exp(-0.5 * (x / 1.5) ** 2)\n\n",
    )
    body = (
        f"delta_log = {MODE_A}\n"
        "gt = torch.log(batch + eps) - log_img\n"
        "oracle = math.e ** (log_img + gt)\n"
        "w = self._window(5)\n"
        "peak = math.e ** self.log_delta_abs_max\n"
        "Ln_hat = log_img + delta_log\n"
        "return math.e ** Ln_hat, oracle, w, peak\n"
    )
    root = repo_with(tmp_path, body, head=head)
    assert listed_lines(root, "phase1") == []
    assert hdrfix("apply", "phase1", "--repo", root).code == 0
    assert check_code(root) == 0


# ------------------------------------------------------------------ walrus (19.6)


def test_mode_a_in_an_if_test_is_clamped_on_both_arms(tmp_path: Path) -> None:
    body = (
        f"if (delta_log := {MODE_A}) is not None and self.log_delta_abs_max > 0.0:\n"
        "    pass\n"
        f"else:\n    delta_log = {MODE_B}\n"
        "self.seen = delta_log\n"
        "return torch.exp(log_img + delta_log)\n"
    )
    root = repo_with(tmp_path, body)
    assert check_code(root) == 1
    assert hdrfix("apply", "phase1", "--repo", root).code == 0
    text = (root / TRAINER).read_text()
    assert text.count(CLAMP) == 1
    # after the whole if/else, at the if's indentation: both arms pass it
    assert f"\n        delta_log = {CLAMP}\n        self.seen" in text
    assert check_code(root) == 0
    assert max(run_patched(root)) <= 8.0 + 1e-6


@pytest.mark.parametrize("keyword", ["if", "while"])
def test_a_walrus_after_the_clamp_does_not_bypass_it(tmp_path: Path, keyword: str) -> None:
    stop = "pass" if keyword == "if" else "break"
    body = (
        f"delta_log = {MODE_A}\n"
        f"delta_log = {CLAMP}\n"
        f"{keyword} (delta_log := {MODE_B}) is not None:\n    {stop}\n"
        "self.seen = delta_log\n"
        "return torch.exp(log_img + delta_log)\n"
    )
    root = repo_with(tmp_path, body)
    status = json.loads(hdrfix("status", "phase1", "--repo", root, "--format", "json").out)
    assert status["phases"][0]["state"] != "applied"
    assert check_code(root) == 1
    assert hdrfix("apply", "phase1", "--repo", root).code == 0
    text = (root / TRAINER).read_text()
    if keyword == "if":  # clamped after the if that reassigns it
        assert text.index(f"{keyword} (delta_log") < text.rindex(CLAMP) < text.index("self.seen")
        assert max(run_patched(root)) <= 8.0 + 1e-6
    else:  # listed: the loop's test runs again after any statement hdrfix could add
        plan = plan_of(root, "phase1")
        at = line_of(root, "while (delta_log")
        assert any(i["line"] == at and "while" in i["what"] for i in plan["not_handled"]), plan
    # the first Mode A and its clamp are now dead code: listed as computed twice, so --check
    # stays at 1 until the user removes it
    assert check_code(root) == 1


def test_a_walrus_used_inside_its_if_is_listed(tmp_path: Path) -> None:
    body = (
        f"if (delta_log := {MODE_A}) is not None:\n"
        "    return torch.exp(log_img + delta_log)\n"
        "return None\n"
    )
    root = repo_with(tmp_path, body)
    plan = plan_of(root, "phase1")
    assert line_of(root, "if (delta_log") in [i["line"] for i in plan["not_handled"]], plan
    assert hdrfix("apply", "phase1", "--repo", root).code == 0
    assert check_code(root) == 1


# ------------------------------------------------------------------ tiles (18.6)

TILES = """\
import torch


class Trainer:
    def _tiles(self, batch):
        for tile in batch.split(2, dim=-1):
            log_img = torch.log(torch.clamp(tile, min=0) + 1e-6)
            denom = log_img.amax() - log_img.amin()
            pred = self.patch_network(log_img)
            if self.log_delta_abs_max > 0.0:
                delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
            else:
                delta_log = (self.log_delta_scale * denom) * torch.tanh(pred)
            yield log_img, delta_log

    def validation_step(self, batch, batch_idx):
        outs = []
        for log_img, delta_log in self._tiles(batch):
            self.seen = delta_log
            outs.append(torch.exp(log_img + delta_log))
        return torch.cat(outs, dim=-1)
"""


def test_a_residual_computed_in_a_generator_is_clamped_there(tmp_path: Path) -> None:
    root = repo_with(tmp_path, "", head=TILES)
    assert check_code(root) == 1
    assert hdrfix("apply", "phase1", "--repo", root).code == 0
    text = (root / TRAINER).read_text()
    assert text.count(CLAMP) == 1
    assert text.index("else:") < text.index(CLAMP) < text.index("yield log_img, delta_log")
    assert check_code(root) == 0
    assert max(run_patched(root, ("validation_step",))) <= 8.0 + 1e-6


def test_a_tile_loop_hdrfix_cannot_follow_is_listed(tmp_path: Path) -> None:
    """``zip`` over lists filled in a loop: not followed, so listed (it was silent)."""
    body = (
        "logs, deltas = [], []\n"
        "for tile in batch.split(2, dim=-1):\n"
        "    li = torch.log(tile + eps)\n"
        "    logs.append(li)\n"
        f"    deltas.append({MODE_A.replace('pred', 'self.patch_network(li)')})\n"
        "return [torch.exp(a + b) for a, b in zip(logs, deltas)]\n"
    )
    root = repo_with(tmp_path, body)
    assert listed_lines(root, "phase1") == [line_of(root, "return [torch.exp")]
    assert listed_lines(root, "bound") == [line_of(root, "return [torch.exp")]
    assert check_code(root) == 1


# ------------------------------------------------------------------ CR-only trainer (19.13)


def test_a_cr_only_trainer_is_patched_and_keeps_its_line_endings(tmp_path: Path) -> None:
    """CPython reads ``\\r`` alone as a line end; so must hdrfix, through two phases that each
    re-read what the other wrote, leaving every line it does not change byte for byte."""
    from conftest import FRAMEWORK, copy_tree

    root = copy_tree(FRAMEWORK, tmp_path / "repo")
    trainer = root / TRAINER
    lines = trainer.read_text().splitlines()
    # as the field writes them: whitespace-only lines between methods
    cr = "\r".join(line if line.strip() else "    " for line in lines) + "\r"
    trainer.write_bytes(cr.encode())
    result = hdrfix("apply", "phase1", "bound", "--repo", root)
    assert result.code == 0, result.err
    written = trainer.read_bytes()
    assert b"\n" not in written
    compile(written, TRAINER, "exec")
    new_lines = written.decode().split("\r")
    old_lines = cr.split("\r")
    added = [line.strip() for line in new_lines if line not in old_lines]
    assert added.count(f"delta_log = {CLAMP}") == 2, added
    assert added.count("Ln_hat = torch.clamp(Ln_hat, max=self.log_output_max)") == 2, added
    assert all("clamp(" in line or "log_output_max" in line for line in added), added
    # every original line is still there, in order
    it = iter(new_lines)
    assert all(any(line == n for n in it) for line in old_lines)
    assert hdrfix("apply", "phase1", "bound", "--repo", root, "--check").code == 0


# ------------------------------------------------------------------ line numbers on disk (18.6)

TWO_STEPS = """\
import torch


class Trainer:
    def training_step(self, batch, batch_idx):
        log_img = torch.log(torch.clamp(batch, min=0) + 1e-6)
        pred = self.patch_network(log_img)
        delta_log = self.log_delta_alpha * torch.tanh(pred) * self.log_delta_abs_max
        return torch.exp(log_img + delta_log)

    def validation_step(self, batch, batch_idx):
        log_img = torch.log(torch.clamp(batch, min=0) + 1e-6)
        pred = self.patch_network(log_img)
        delta_log = self.log_delta_alpha * pred.tanh().mul(self.log_delta_abs_max)
        return torch.exp(log_img + delta_log)
"""


def test_a_refusal_after_an_earlier_phase_names_the_line_on_disk(tmp_path: Path) -> None:
    """phase2 reads the text with phase1's clamp in training_step, one line above; the user
    reads the file on disk, so the refusal names the disk's line of the Mode A."""
    from conftest import FRAMEWORK

    root = repo_with(tmp_path, "", head=TWO_STEPS)
    (root / "net.py").write_text(
        (FRAMEWORK / "src/npu/networks/patch/patch_network.py").read_text()
    )
    result = hdrfix("apply", "phase1", "phase2", "--repo", root)
    assert result.code == 2
    assert f"{TRAINER}:{line_of(root, 'pred.tanh().mul')}:" in result.err, result.err
    # the items of a later phase too: bound's reconstructions, at their lines on disk
    plan = json.loads(
        hdrfix("apply", "phase1", "bound", "--repo", root, "--dry-run", "--format", "json").out
    )
    bound = next(p for p in plan["phases"] if p["phase"] == "bound")
    lines = sorted(i["line"] for i in bound["items"] if i["path"] == TRAINER)
    exps = [n for n, t in enumerate((root / TRAINER).read_text().splitlines(), 1) if "exp(" in t]
    assert lines == exps


def test_a_listed_line_is_acknowledged_with_a_comment(tmp_path: Path) -> None:
    """The user bounds the dict entry by hand and says so on the line hdrfix names: it is no
    longer pending, and status still shows it, as acknowledged."""
    where = (
        "out = {}\nout['delta_log'] = delta_log.clamp(-8.0, 8.0)\n"
        "return torch.exp(log_img + out['delta_log'])  # hdrfix: handled (clamped above)\n"
    )
    root = repo_with(tmp_path, f"delta_log = {MODE_A}\n{where}")
    exp_line = line_of(root, "return torch.exp")
    plan = plan_of(root, "phase1")
    assert exp_line not in [i["line"] for i in plan["not_handled"]]
    assert any(f"{TRAINER}:{exp_line}: acknowledged" in n for n in plan["notes"]), plan
    # the residual itself is listed too (it reaches no reconstruction hdrfix follows); once
    # both lines say so and the config is applied, --check passes
    text = (root / TRAINER).read_text()
    (root / TRAINER).write_text(text.replace(MODE_A, MODE_A + "  # hdrfix: handled"))
    assert hdrfix("apply", "phase1", "--repo", root).code == 0
    assert check_code(root) == 0
    # a string holding the words is not a comment
    text = (
        (root / TRAINER)
        .read_text()
        .replace("  # hdrfix: handled (clamped above)", "; _ = '# hdrfix: handled'")
    )
    (root / TRAINER).write_text(text)
    assert exp_line in listed_lines(root, "phase1")


def test_a_walrus_in_a_comprehension_defines_the_name_in_the_function(tmp_path: Path) -> None:
    """PEP 572: ``d`` is the function's; the exp of ``log_img + d`` is found, not lost."""
    body = (
        f"parts = [(delta_log := {MODE_A}) for _ in range(1)]\n"
        "return torch.exp(log_img + delta_log), parts\n"
    )
    root = repo_with(tmp_path, body)
    plan = plan_of(root, "phase1")
    at = line_of(root, "parts = [")
    assert any(i["line"] == at and ":=" in i["what"] for i in plan["not_handled"]), plan
    assert check_code(root) == 1


def test_a_scheduler_lambda_is_not_listed_but_one_reading_the_residual_is(tmp_path: Path) -> None:
    body = (
        f"delta_log = {MODE_A}\n"
        "decay = lambda step: math.exp(-step / 1000.0)\n"
        "gain = lambda k: torch.exp(k * delta_log)\n"
        "Ln_hat = log_img + delta_log\n"
        "return math.e ** Ln_hat, decay(3), gain(2)\n"
    )
    root = repo_with(tmp_path, body)
    assert listed_lines(root, "phase1") == [line_of(root, "gain = lambda")]


def test_an_exp_in_a_nested_function_of_a_closure_residual_is_listed(tmp_path: Path) -> None:
    body = (
        f"delta_log = {MODE_A}\n"
        "kept = {'ln': log_img + delta_log}\n"
        "def to_linear(scale):\n"
        "    return torch.exp(kept['ln']) * scale\n"
        "def window(n):\n"
        "    return torch.exp(-torch.arange(n) ** 2)\n"
        "return torch.exp(log_img + delta_log), to_linear(1.0), window(3)\n"
    )
    root = repo_with(tmp_path, body)
    listed = listed_lines(root, "phase1")
    assert line_of(root, "return torch.exp(kept") in listed
    assert line_of(root, "return torch.exp(-torch.arange") not in listed
