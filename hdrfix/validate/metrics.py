"""What validate measures: overflow, frame and hole error, residual statistics, memory.

Every number is computed from the raw tensors the trainer leaves in ``last_log_branch``, never
from the trainer's own logs, so that every variant is measured the same way whatever its code
does. :data:`DEFINITIONS` says exactly what each number is; it goes into ``report.json``.
"""

from __future__ import annotations

import gc
import math

import torch

from hdrfix.halffloat import HALF_MAX  # HDR frames are stored as half-float EXR

# The fixture's mu-law tone map, under which frame and hole error are measured.
MU = 300.0
WHITE_POINT = 1000.0
# The held-out delta_log histogram: values beyond the range land in the end bins.
HIST_RANGE = (-20.0, 20.0)
HIST_BINS = 80

#: What each metric of report.json means (written into the report).
DEFINITIONS = {
    "train_overflow_px": "elements (pixel x channel) of the raw training prediction, before "
    "nan_to_num, above 65504 or not finite, summed over all steps",
    "train_steps_with_overflow": "training steps with at least one such element",
    "eval_overflow_px": "the same over the held-out batches (validation_step)",
    "eval_batches_with_overflow": "held-out batches with at least one overflow element",
    "eval_frame_error": "mean |mu(stored) - mu(target)| over all held-out elements; "
    "mu(x) = log1p(300 max(x/1000, 0)) / log1p(300); stored = prediction "
    "as a half-float frame holds it (NaN -> 0, clipped to [0, 65504])",
    "eval_hole_error": "the same mean over hole pixels only (no source pixel landed there)",
    "train_max_abs_delta_log": "largest |delta_log| in training",
    "eval_max_abs_delta_log": "largest |delta_log| on the held-out batches",
    "train_clamped_share": "share of delta_log elements within 1e-6 of phase1's clamp bound 8.0 "
    "in training (variants with phase1 only)",
    "eval_clamped_share": "the same on the held-out batches",
    "learned_scale": "the network's residual_output_scale after training (phase2)",
    "learned_scale_init": "its value before training, as the patched code initialises it",
    "final_train_loss": "mean training loss over the last 10% of steps (each variant's own "
    "objective: phases change the loss, so compare with care)",
    "step_ms": "median ms of a training step (forward, backward, optimiser step), the variants "
    "taking turns step by step after training so that machine load hits all alike",
    "train_step_ms": "median ms of a training step during the variant's own training",
    "peak_memory_mib": "see memory_definition",
}

MEMORY_METHODS = {
    "cuda": "torch.cuda.max_memory_allocated while the variant trained, minus what was "
    "allocated before it (the models and batches of the run) (MiB)",
    "cpu-vmhwm": "CPU: peak resident set size of the process while the variant ran (VmHWM, "
    "reset per variant through /proc/self/clear_refs) minus the RSS before it (MiB)",
    "cpu-rusage": "CPU: growth of the process's peak RSS (resource.getrusage ru_maxrss) while "
    "the variant ran (MiB); 0 when it stayed below an earlier variant's peak",
}


def mulaw(x: torch.Tensor) -> torch.Tensor:
    """The fixture's tone map: log1p(mu * max(x / white, 0)) / log1p(mu)."""
    return torch.log1p(MU * torch.clamp(x / WHITE_POINT, min=0)) / math.log1p(MU)


def stored(prediction: torch.Tensor) -> torch.Tensor:
    """The prediction as a half-float frame holds it: NaN -> 0, clipped to [0, 65504]."""
    return torch.nan_to_num(prediction, nan=0.0, posinf=HALF_MAX, neginf=0.0).clamp(0.0, HALF_MAX)


class Sums:
    """Running sums over batches, reduced to the report's numbers at the end."""

    def __init__(self, clamp_bound: float | None = None) -> None:
        # residuals at the variant's clamp bound are counted; a variant without one has none
        self.clamp_bound = math.inf if clamp_bound is None else clamp_bound
        self.overflow_px = 0
        self.with_overflow = 0
        self.max_abs_delta = 0.0
        self.clamped = 0
        self.delta_count = 0
        self.err_sum = 0.0
        self.err_count = 0
        self.hole_sum = 0.0
        self.hole_count = 0.0
        self.hist = torch.zeros(HIST_BINS, dtype=torch.float64)

    def add_branch(self, prediction: torch.Tensor, delta_log: torch.Tensor) -> int:
        """Count one step's raw prediction and residual; returns its overflow elements."""
        from hdrfix.nn import overflow_stats

        stats = overflow_stats(
            prediction, delta_log, ceiling=HALF_MAX, clamp_bound=self.clamp_bound
        )
        self.overflow_px += stats.overflow_pixels
        self.with_overflow += stats.overflow_pixels > 0
        largest = stats.max_abs_delta
        self.max_abs_delta = max(self.max_abs_delta, math.inf if math.isnan(largest) else largest)
        self.clamped += round(stats.clamped_share * delta_log.numel())
        self.delta_count += delta_log.numel()
        return stats.overflow_pixels

    def add_errors(
        self, prediction: torch.Tensor, target: torch.Tensor, hole_mask: torch.Tensor
    ) -> None:
        err = (mulaw(stored(prediction)) - mulaw(target)).abs()
        holes = hole_mask.expand_as(err)
        self.err_sum += float(err.sum())
        self.err_count += err.numel()
        self.hole_sum += float((err * holes).sum())
        self.hole_count += float(holes.sum())

    def add_hist(self, delta_log: torch.Tensor) -> None:
        values = torch.nan_to_num(delta_log.detach().float(), nan=0.0).clamp(*HIST_RANGE)
        self.hist += torch.histc(values.cpu(), HIST_BINS, *HIST_RANGE).double()


def _rss_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class Memory:
    """Peak memory of one variant: CUDA allocator peak, else the process's peak RSS growth."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.method = "cuda" if device == "cuda" else self._cpu_method()
        self.start = 0

    @staticmethod
    def _cpu_method() -> str:
        if _rss_kib("VmHWM") is not None and _rss_kib("VmRSS") is not None:
            try:
                with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                    handle.write("5")
                return "cpu-vmhwm"
            except OSError:
                pass
        return "cpu-rusage"

    def begin(self) -> None:
        gc.collect()
        if self.method == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        elif self.method == "cpu-vmhwm":
            _malloc_trim()
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")
            self.start = (_rss_kib("VmRSS") or 0) * 1024
        else:
            import resource

            self.start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def peak_mib(self) -> float:
        if self.method == "cuda":
            return max(0, torch.cuda.max_memory_allocated() - self.start) / 2**20
        if self.method == "cpu-vmhwm":
            return max(0, (_rss_kib("VmHWM") or 0) * 1024 - self.start) / 2**20
        import resource

        return (
            max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.start) / 2**20
        )


def _malloc_trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
