"""The settings of one ``hdrfix validate`` run, with their defaults and checks.

Their own module so that the run (:mod:`hdrfix.validate.run`) and the workers that train the
variants side by side (:mod:`hdrfix.validate.parallel`) read one definition without importing
each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hdrfix.lang.errors import HdrfixError
from hdrfix.validate.metrics import HALF_MAX, MU, WHITE_POINT
from hdrfix.validate.training import EVAL_SEED_OFFSET

if TYPE_CHECKING:
    from hdrfix.validate.variants import Variant

# The default run's size: all default variants (base and each phase) train in well under a
# minute on 2 CPU cores and still show docs/design.md §4's effects (base overflows, phase1 cuts
# it but hurts the holes, bound removes it at no cost).
DEFAULT_STEPS = 300
DEFAULT_BATCH = 4
DEFAULT_SIZE = (48, 48)
DEFAULT_EVAL_BATCHES = 32
DEFAULT_SEED = 0


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise HdrfixError(f"--size takes HxW, e.g. 64x64; got {text!r}")
    h, w = int(match.group(1)), int(match.group(2))
    if h < 8 or w < 8 or h * w > 4096 * 4096:
        raise HdrfixError(f"--size {h}x{w}: frames must be at least 8x8 and at most 4096x4096")
    return h, w


@dataclass
class Settings:
    variants: list[Variant]
    steps: int = DEFAULT_STEPS
    batch: int = DEFAULT_BATCH
    height: int = DEFAULT_SIZE[0]
    width: int = DEFAULT_SIZE[1]
    device: str = "cpu"
    seed: int = DEFAULT_SEED
    eval_batches: int = DEFAULT_EVAL_BATCHES
    network_from: Path | None = None
    network: str | None = None  # with network_from: the file defining PatchNetwork
    # variants trained at once, each in its own process (default: the cores free now); the
    # figures do not depend on it (hdrfix.validate.threads)
    threads: int | None = None
    torch_threads: int = 1  # per variant; more only for benchmarks/bench_validate.py
    notes: list[str] = field(default_factory=list)

    def check(self) -> None:
        if not self.variants:
            raise HdrfixError("no variant to run")
        if self.steps < 1:
            raise HdrfixError(f"--steps must be at least 1, got {self.steps}")
        if self.batch < 1:
            raise HdrfixError(f"--batch must be at least 1, got {self.batch}")
        if self.eval_batches < 1:
            raise HdrfixError(f"--eval-batches must be at least 1, got {self.eval_batches}")
        if self.threads is not None and self.threads < 1:
            raise HdrfixError(f"--threads must be at least 1, got {self.threads}")
        if self.torch_threads < 1:
            raise HdrfixError(f"torch threads must be at least 1, got {self.torch_threads}")
        if self.device not in ("cpu", "cuda"):
            raise HdrfixError(f"--device must be cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            why = (
                "this torch is built without CUDA"
                if torch.version.cuda is None
                else "torch sees no GPU"
            )
            raise HdrfixError(
                f"--device cuda: {why} (torch {torch.__version__})", hint="use --device cpu"
            )
        if self.network and self.network_from is None:
            raise HdrfixError("--network needs --network-from REPO")
        if self.network_from is not None and not Path(self.network_from).is_dir():
            raise HdrfixError(
                "--network-from: no such folder",
                str(self.network_from),
                hint="pass the root of the repository holding PatchNetwork",
            )

    def as_json(self) -> dict[str, Any]:
        return {
            "variants": [
                {"name": v.name, "phases": list(v.phases), "clamp_bound": v.residual_bound}
                for v in self.variants
            ],
            "steps": self.steps,
            "batch": self.batch,
            "height": self.height,
            "width": self.width,
            "device": self.device,
            "seed": self.seed,
            "eval_batches": self.eval_batches,
            "eval_seed": self.seed + EVAL_SEED_OFFSET,
            "network_from": str(self.network_from) if self.network_from else None,
            "threads": self.torch_threads,
            "half_max": HALF_MAX,
            # the bound of the variants that clamp (per variant: variants[].clamp_bound)
            "clamp_bound": max(
                (v.residual_bound for v in self.variants if v.residual_bound is not None),
                default=None,
            ),
            "mulaw_mu": MU,
            "white_point": WHITE_POINT,
        }
