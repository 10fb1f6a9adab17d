"""How many variants validate trains at once, and torch's threads and determinism meanwhile.

Each variant trains with one torch thread, so its figures depend on the seed alone: torch
splits a CPU reduction by its thread count, and the sums then differ from the 7th digit on,
which a few hundred steps grow into whole percent (issue 20 measured bound's frame error at
-3.8% with 2 threads and +10.7% with 1). The cores are used by training several variants side
by side instead (:mod:`hdrfix.validate.parallel`), as many as the machine gives now: the
cores this process may run on (affinity, and a cgroup's CPU quota in a container) less what
other processes keep busy (the load average). On a busy machine that is one, which is also
the fastest there: threads that wait on each other made a 25 s run take 16 minutes.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def core_count() -> int:
    """The cores this process may run on: its affinity, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(CGROUP_CPU_MAX)
    return max(1, min(cores, quota)) if quota is not None else max(1, cores)


def _cgroup_quota(path: Path) -> int | None:
    """``cpu.max`` holds ``QUOTA PERIOD`` (or ``max PERIOD``): the CPUs it allows, rounded up."""
    try:
        fields = path.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return math.ceil(quota / period) if quota > 0 and period > 0 else None


def free_cores(cores: int | None = None, load: float | None = None) -> int:
    """The cores not kept busy by other processes now: at least one.

    ``load`` is the 1-minute load average (read from the system when not given); it counts
    the processes that run or wait to, so ``cores - load`` is what is left for this run.
    """
    cores = core_count() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return cores
    return max(1, min(cores, math.floor(cores - load + 0.5)))


def choose_workers(requested: int | None, variants: int, device: str) -> int:
    """How many variants train at once: ``--threads`` when given, else the free cores (one on
    a GPU, which the variants would share); never more than there are variants."""
    if requested is not None:
        return max(1, min(requested, variants))
    if device != "cpu":
        return 1
    return max(1, min(free_cores(), variants))


@contextlib.contextmanager
def torch_settings(device: str, threads: int = 1) -> Iterator[None]:
    """``threads`` torch threads and deterministic algorithms; the process's previous settings
    come back afterwards."""
    import torch

    before = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.set_num_threads(threads)
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        # bilinear upsampling has no deterministic CUDA backward: warn (silenced), don't fail
        _deterministic(True, warn_only=True)
    else:
        _deterministic(True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*deterministic.*")
            yield
    finally:
        torch.set_num_threads(before)
        _deterministic(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def _deterministic(mode: bool, warn_only: bool = False) -> None:
    """``torch.use_deterministic_algorithms``, without importing inductor when nothing has.

    Since torch 2.x that function imports ``torch._inductor.config`` (and with it dynamo) only
    to copy the flag into inductor's config: 1.6 s here, in every process that trains a
    variant, for a compiler validate never uses. The flag itself is torch's own switch; where
    inductor is loaded already (the user's code compiled something), the public call keeps
    its config in step."""
    import torch

    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)
