"""What a cell measures while the user's code runs: exp outputs, delta_log, losses, step time.

The reconstruction ``exp(Ln_hat)`` is where the field overflows, and hdrfix cannot know what the
user's trainer calls its prediction; every ``torch.exp`` / ``Tensor.exp`` whose output is a
3-channel image ([N, 3, H, W]) is that reconstruction in the field's trainer, so the probe
wraps both while a cell runs and keeps the largest value and the count above half's maximum.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

HALF_MAX = 65504.0


@dataclass
class Probe:
    max_exp: float | None = None
    overflow: int | None = None  # values above HALF_MAX in the worst single exp output
    max_delta_log: float | None = None
    losses: list[float] = field(default_factory=list)
    step_s: list[float] = field(default_factory=list)

    def saw_exp(self, out: Any) -> None:
        if not (isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[1] == 3):
            return
        with torch.no_grad():
            peak = float(out.detach().max()) if out.numel() else 0.0
            over = int((out.detach() > HALF_MAX).sum())
        self.max_exp = peak if self.max_exp is None else max(self.max_exp, peak)
        self.overflow = over if self.overflow is None else max(self.overflow, over)

    def saw_step(self, model: Any) -> None:
        """The field trainer keeps its last log-mode tensors in ``last_log_branch``."""
        branch = getattr(model, "last_log_branch", None)
        self.saw_delta(branch.get("delta_log") if isinstance(branch, dict) else None)
        if isinstance(branch, dict):
            branch.clear()  # a later mode's step must not report this one's tensors

    def saw_delta(self, delta: Any) -> None:
        """A log residual as the trainer computed it: keep its largest magnitude."""
        if isinstance(delta, torch.Tensor) and delta.numel() and delta.is_floating_point():
            value = float(delta.detach().abs().max())
            self.max_delta_log = (
                value if self.max_delta_log is None else max(self.max_delta_log, value)
            )

    def saw_loss(self, out: Any) -> torch.Tensor:
        loss = out.get("loss") if isinstance(out, dict) else out
        if not isinstance(loss, torch.Tensor):
            raise TypeError(f"training_step returned {type(out).__name__}, not a loss tensor")
        self.losses.append(float(loss.detach()))
        return loss

    @property
    def finite(self) -> bool:
        return bool(self.losses) and all(math.isfinite(v) for v in self.losses)


@contextlib.contextmanager
def recording(probe: Probe) -> Iterator[None]:
    """``torch.exp`` and ``Tensor.exp`` report their outputs to ``probe`` while the block runs."""
    plain, method = torch.exp, torch.Tensor.exp

    def exp(*args: Any, **kwargs: Any) -> Any:
        out = plain(*args, **kwargs)
        probe.saw_exp(out)
        return out

    def tensor_exp(self: torch.Tensor) -> torch.Tensor:
        out = method(self)
        probe.saw_exp(out)
        return out

    torch.exp = exp  # type: ignore[assignment]
    torch.Tensor.exp = tensor_exp  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        torch.exp = plain
        torch.Tensor.exp = method  # type: ignore[method-assign]


class Timer:
    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.start = 0.0

    def begin(self) -> None:
        self.start = time.perf_counter()

    def end(self) -> None:
        self.probe.step_s.append(time.perf_counter() - self.start)
