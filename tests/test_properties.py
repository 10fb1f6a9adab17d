"""Property-based: whatever the layout of the log branch, phase1 clamps each site exactly once."""

from __future__ import annotations

import ast
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sitecheck import clamps_per_site, sites_clamped

from hdrfix.core.engine import plan_run
from hdrfix.core.plugin import discover
from hdrfix.core.repo import Repo

CONFIG = "normalization:\n  log_delta_abs_max: 16.0\n  log_delta_alpha: 1.2\n"
TRAINER = "train/patch_training_framework.py"


@contextlib.contextmanager
def small_repo(config: str, source: str) -> Iterator[Path]:
    """A repository holding just ``config`` and the trainer ``source``, removed afterwards: one
    per example (hypothesis runs the test body many times, so tmp_path would be shared)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "configs").mkdir()
        (root / "configs/c.yaml").write_text(config)
        (root / "train").mkdir()
        (root / TRAINER).write_text(source)
        yield root


@st.composite
def log_branch(draw) -> str:
    """A training step in one of the many layouts seen in the field."""
    scale = draw(st.sampled_from(["scale", "residual_scale", "s", None]))
    pred = draw(st.sampled_from(["residual_pred_log", "pred", "batch_delta_log"]))
    res = draw(st.sampled_from(["delta_log", "residual", "dl"]))
    log = draw(st.sampled_from(["log_img", "Lw", "log_image"]))
    tail = f" * {scale}" if scale else ""
    mode_a = f"self.log_delta_alpha * torch.tanh({pred}) * self.log_delta_abs_max{tail}"
    flat_mode_a = mode_a
    if draw(st.booleans()):
        mode_a = (
            f"(\n            self.log_delta_alpha\n            * torch.tanh({pred})  # bounded\n"
            f"            * self.log_delta_abs_max{tail}\n        )"
        )
    mode_b = f"(self.log_delta_scale * denom) * torch.tanh({pred}){tail}"
    filler = draw(
        st.lists(
            st.sampled_from(["", "# a comment", "unused = 1", "self.counter += 1", "    "]),
            max_size=3,
        )
    )
    pad = "".join(f"        {f.strip()}\n" if f.strip() else "\n" for f in filler)
    inner = "".join(f"            {f.strip()}\n" if f.strip() else "\n" for f in filler)
    shape = draw(st.sampled_from(["if_else", "one_line", "mode_a_only", "bare"]))
    if shape == "if_else":
        compute = (
            f"        if self.log_delta_abs_max > 0.0:\n            {res} = {mode_a}\n"
            f"{inner}        else:\n            {res} = {mode_b}\n"
        )
    elif shape == "one_line":
        compute = (
            f"        if self.log_delta_abs_max > 0.0: {res} = {flat_mode_a}\n"
            f"        else: {res} = {mode_b}\n"
        )
    elif shape == "mode_a_only":
        compute = f"        if self.log_delta_abs_max > 0.0:\n            {res} = {mode_a}\n"
    else:
        compute = f"        {res} = {mode_a}\n"
    scale_line = f"        {scale} = 1.0\n" if scale else ""
    mask = draw(st.booleans())
    recon_inline = draw(st.booleans())
    body = (
        f"        eps = 1e-6\n{scale_line}"
        f"        {log} = torch.log(torch.clamp(batch, min=0) + eps)\n{pad}"
        f"        denom = {log}.amax() - {log}.amin()\n"
        f"        {pred} = self.patch_network({log})\n{pad}"
        f"{compute}{pad}"
        + (f"        {res} = {res} * mask_weight\n" if mask else "")
        + (
            f"        return torch.exp({log} + {res}) - eps\n"
            if recon_inline
            else f"        Ln_hat = ({log}\n                  + {res})\n"
            f"        return torch.exp(Ln_hat) - eps\n"
        )
    )
    return (
        "import torch\n\n\nclass Trainer:\n    def training_step(self, batch, batch_idx):\n"
        f"{body}\n    def validation_step(self, batch, batch_idx):\n{body}"
    )


def apply_phase1(root: Path) -> int:
    repo = Repo(root)
    run = plan_run(repo, ["phase1"], discover(), {})
    for change in run.changes:
        (root / change.rel).write_bytes(change.new_bytes)
    return len(run.changes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log_branch())
def test_phase1_clamps_each_site_once_and_then_is_a_no_op(source: str) -> None:
    with small_repo(CONFIG, source) as root:
        assert apply_phase1(root) == 2
        patched = (root / TRAINER).read_text()
        ast.parse(patched)
        assert clamps_per_site(root, TRAINER) == [1, 1]
        assert sites_clamped(root, TRAINER) == [True, True]
        assert apply_phase1(root) == 0


# --------------------------------------------------------------------------- the field's shapes

FIELD_CONFIG = "normalization:\n  log_delta_abs_max: 16.0\n  log_delta_alpha: 1.2\n"


@st.composite
def field_step(draw) -> tuple[str, bool]:
    """A trainer in one of the field's shapes; True when Mode A has no else (abs_max > 0 only).

    Every shape records the residual that reaches the exp in ``self.seen``.
    """
    res = draw(st.sampled_from(["delta_log", "dl"]))
    pred = draw(st.sampled_from(["residual_pred_log", "p"]))
    log = draw(st.sampled_from(["log_img", "Lw"]))
    scale = draw(st.sampled_from([" * scale", ""]))
    mode_a = f"self.log_delta_alpha * torch.tanh({pred}) * self.log_delta_abs_max{scale}"
    mode_b = f"(self.log_delta_scale * denom) * torch.tanh({pred}){scale}"
    hand = draw(st.sampled_from(["none", "each_branch", "wide"]))
    clamp = {"none": "", "each_branch": "min=-8.0, max=8.0", "wide": "min=-30.0, max=30.0"}[hand]
    after = f"\n    {res} = torch.clamp({res}, {clamp})" if clamp else ""
    shape = draw(st.sampled_from(["if_else", "one_line", "mode_a_only", "annotated", "try"]))
    if shape == "if_else":
        compute = (
            f"if self.log_delta_abs_max > 0.0:\n    {res} = {mode_a}{after}\n"
            f"else:\n    {res} = {mode_b}{after}\n"
        )
    elif shape == "one_line":
        compute = f"if self.log_delta_abs_max > 0.0: {res} = {mode_a}\nelse: {res} = {mode_b}\n"
    elif shape == "mode_a_only":
        compute = f"if self.log_delta_abs_max > 0.0:\n    {res} = {mode_a}{after}\n"
    elif shape == "annotated":
        compute = f"{res}: torch.Tensor = {mode_a}\n"
    else:
        compute = (
            f"try:\n    {res} = {mode_a}{after}\n"
            f"except RuntimeError:\n    {res} = {mode_b}{after}\n"
        )
    if draw(st.booleans()):
        compute += f"{res} = {res} * mask_weight\n"
    prep = (
        f"{log} = torch.log(torch.clamp(x, min=0) + eps)\n"
        f"denom = {log}.amax() - {log}.amin()\n"
        f"mask_weight = torch.ones_like({log})\n"
        f"{pred} = self.patch_network({log})\n"
    )
    recon = draw(st.booleans())
    use = (
        f"self.seen = {res}\nLn_hat = {log} + {res}\nout = torch.exp(Ln_hat) - eps\n"
        if recon
        else f"self.seen = {res}\nout = torch.exp({log} + {res}) - eps\n"
    )
    layout = draw(st.sampled_from(["flat", "two_chains", "helper_tuple"]))

    def block(text: str, depth: int) -> str:
        return "".join(" " * 4 * depth + line + "\n" for line in text.splitlines())

    if layout == "flat":
        body = block(
            "eps = 1e-6\nscale = 1.0\nx = batch\n" + prep + compute + use + "return out", 2
        )
        helper = ""
    elif layout == "two_chains":
        body = block("eps = 1e-6\nscale = 1.0\nx = batch\n", 2)
        body += block("if self.norm_type == 'global':\n    other = self.patch_network(x)", 2)
        body += block("elif self.norm_type == 'log':", 2) + block(prep + compute, 3)
        body += block("else:\n    other = x", 2)
        body += block("if self.norm_type == 'log':", 2) + block(use, 3)
        body += block("else:\n    out = x + other\nreturn out", 2)
        helper = ""
    else:
        helper = block("def _residual(self, x, scale, eps):", 1) + block(
            prep + compute + f"return {res}, {log}", 2
        )
        body = block("eps = 1e-6\nscale = 1.0\n", 2)
        body += block(f"{res}, {log} = self._residual(batch, scale, eps)", 2)
        body += block(use + "return out", 2)
    source = (
        "import torch\n\n\nclass Trainer:\n"
        + helper
        + "    def training_step(self, batch, batch_idx):\n"
        + body
        + "\n    def validation_step(self, batch, batch_idx):\n"
        + body
    )
    return source, shape == "mode_a_only"


def _run_patched(source: str, abs_max: float, mode: str):
    import torch

    namespace: dict = {}
    exec(compile(source, TRAINER, "exec"), namespace)  # the patched trainer, as Python runs it
    trainer = object.__new__(namespace["Trainer"])
    trainer.norm_type = mode
    trainer.log_delta_abs_max = abs_max
    trainer.log_delta_alpha = 1.2
    trainer.log_delta_scale = 0.9
    trainer.patch_network = lambda x, **kw: torch.full_like(x, 50.0)  # blown-up raw output
    trainer.seen = None
    batch = torch.rand(1, 3, 4, 4) * 1e4 + 1e-3
    for step in (trainer.training_step, trainer.validation_step):
        step(batch, 0)
        yield trainer.seen


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field_step())
def test_field_shapes_patched_run_in_every_mode_and_stay_clamped(case: tuple[str, bool]) -> None:
    """The engine accepted the edit (it refuses any inserted read of an unassigned name), and
    the patched steps, executed with a blown-up fake network, never raise and never hand the
    exp a residual beyond the clamp."""
    source, mode_a_only = case
    with small_repo(FIELD_CONFIG, source) as root:
        apply_phase1(root)
        patched = (root / TRAINER).read_text()
        assert all(sites_clamped(root, TRAINER)), patched
        assert apply_phase1(root) == 0
    for abs_max in (16.0,) if mode_a_only else (16.0, 0.0):
        for mode in ("log", "global", "per_patch"):
            for seen in _run_patched(patched, abs_max, mode):
                if mode == "log":
                    assert seen is not None and float(seen.abs().max()) <= 8.0, patched
