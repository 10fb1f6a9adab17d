"""Property-based: whatever the layout of the log branch, phase1 clamps each site exactly once."""

from __future__ import annotations

import ast
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hdrfix.engine import plan_run
from hdrfix.plugin import discover
from hdrfix.repo import Repo
from sitecheck import clamps_per_site, sites_clamped

CONFIG = "normalization:\n  log_delta_abs_max: 16.0\n  log_delta_alpha: 1.2\n"
TRAINER = "train/patch_training_framework.py"


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
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "configs").mkdir()
        (root / "configs/c.yaml").write_text(CONFIG)
        (root / "train").mkdir()
        (root / TRAINER).write_text(source)
        assert apply_phase1(root) == 2
        patched = (root / TRAINER).read_text()
        ast.parse(patched)
        assert clamps_per_site(root, TRAINER) == [1, 1]
        assert sites_clamped(root, TRAINER) == [True, True]
        assert apply_phase1(root) == 0
