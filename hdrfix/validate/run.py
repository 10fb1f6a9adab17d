"""``hdrfix validate``: train the untouched and the patched framework side by side.

For each *variant* (``base``, ``phase1``, ``phase1+phase2``, ``bound``, ...):

1. copy the fixture framework (and, with ``network_from``, the user's repository) to a
   temporary folder and apply the variant's phases with the engine ``hdrfix apply`` uses
   (:func:`hdrfix.core.engine.plan_run`, then :func:`hdrfix.core.engine.commit_run`);
2. import the patched trainer (``PatchFrameInterpolationTrainer``) and network from that copy;
   the network file is loaded directly, past its package ``__init__`` (which needs OpenCV in
   the field, see :func:`_load_file`);
3. load the one initial network state of this run, train ``steps`` steps on synthetic HDR
   batches in the field's format (:func:`hdrfix.validate.synth.field_batch` of
   :class:`hdrfix.validate.synth.SyntheticHDR`: ``patch_input`` [N, 7, H, W], the same batches
   for every variant) with the trainer's own ``training_step`` and ``configure_optimizers``, in its
   ``log`` mode (the config's ``normalization.type``);
4. evaluate with the trainer's ``validation_step`` on held-out batches from another seed stream.

Every metric is computed here, from the raw tensors the trainer leaves in ``last_log_branch``
(``prediction`` before ``nan_to_num``, ``delta_log``) and the batch, so that every variant is
measured the same way whatever its code does:

* overflow: elements of the raw prediction above 65504 (half-float max) or not finite;
* frame error: mean |mu(stored) - mu(target)| with mu(x) = log1p(300 x / 1000) / log1p(300),
  where ``stored`` is the prediction as a half-float frame holds it (NaN -> 0, clipped to
  [0, 65504]); hole error: the same mean over hole pixels only;
* max |delta_log|; the share of residual elements at the phase1 clamp bound (within 1e-6 of
  8.0, reported when phase1 is in the variant); the learned ``residual_output_scale`` (phase2);
* step time (median ms of a training step, measured with the variants taking turns so that a
  busy machine slows all alike); peak memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU:
  peak RSS growth of the process while the variant trained, see :data:`MEMORY_METHODS`).

:data:`DEFINITIONS` says exactly what each number is; it goes into ``report.json``.

The result is a plain JSON-ready dict; :mod:`hdrfix.validate.report` renders it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import math
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hdrfix.core.errors import HdrfixError
from hdrfix.validate.synth import SyntheticHDR, field_batch

if TYPE_CHECKING:
    from hdrfix.core.plugin import Phase

HALF_MAX = 65504.0
CLAMP_BOUND = 8.0  # phase1's clamp on |delta_log|
MU = 300.0
WHITE_POINT = 1000.0
HIST_RANGE = (-20.0, 20.0)
HIST_BINS = 80
SCALE_KEY = "residual_output_scale"
NETWORK_KEYS = ("input_channels", "output_channels", "base_channels", "residual_scale_factor")
#: The channels the fixture trainer feeds its network: warped RGB (log-normalised in the log
#: mode), hole mask, occlusion, motion x2 (hdrfix.validate.synth.FIELD_CHANNELS).
TRAINER_INPUT_CHANNELS = 7
FRAMEWORK_CONFIG = "configs/colleague_training_config.yaml"
TRAINER_MODULE = "train.patch_training_framework"
FILE_MODULE_PREFIX = "_hdrfix_validate_"  # networks imported from their file, not a package
FIXTURE_PACKAGES = ("train", "src", "tools")
EVAL_SEED_OFFSET = 1_000_003  # held-out frames: a different seed stream
CACHE_LIMIT_BYTES = 256 * 2**20  # keep the training batches in memory below this (CPU)
CACHE_LIMIT_HOST_BYTES = 16 * 2**30  # ... and in host memory when training on a GPU
TIMING_ROUNDS = 20  # interleaved training steps per variant for the step time

#: Default run: sized so that all four variants train in well under a minute on 2 CPU cores
#: and still show DESIGN §4's effects (base overflows, phase1 cuts it but hurts the holes,
#: bound removes it at no cost).
DEFAULT_VARIANTS = ("base", "phase1", "phase1+phase2", "phase1+phase3", "bound")
DEFAULT_STEPS = 300
DEFAULT_BATCH = 4
DEFAULT_SIZE = (48, 48)
DEFAULT_EVAL_BATCHES = 32
DEFAULT_SEED = 0

FIXTURE_NETWORK = "src/npu/networks/patch/patch_network.py"

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

# The options ``hdrfix apply`` hands the phases when no flag is given.
APPLY_OPTIONS: dict[str, Any] = {
    "config": (),
    "framework": None,
    "network": None,
    "include": (),
    "exclude": (),
    "clamp": None,
    "scale_init": None,
    "loss": None,
    "weight": None,
    "ceiling": None,
}


# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """A named set of phases: ``base`` has none, ``phase1+phase2`` has both (in that order)."""

    name: str
    phases: tuple[str, ...]


def is_placeholder(cls: type) -> bool:
    """A phase registered but not implemented yet (``hdrfix list`` says so)."""
    from hdrfix.core.plugin import Phase

    return getattr(cls, "plan", None) is Phase.plan or "not yet implemented" in str(
        getattr(cls, "summary", "")
    )


def parse_variants(spec: str, phases: Mapping[str, type[Phase]]) -> list[Variant]:
    """``"base,phase1,phase1+phase2"`` -> variants; bad names and missing requirements raise."""
    from hdrfix.core.plugin import resolve

    names = [part.strip() for part in spec.split(",")]
    if not any(names):
        raise HdrfixError("--variants is empty", hint="e.g. --variants base,phase1,bound")
    known = ", ".join(["base"] + sorted(phases))
    variants: list[Variant] = []
    for name in names:
        if not name:
            raise HdrfixError(f"empty variant name in --variants {spec!r}")
        if name == "base":
            variants.append(Variant("base", ()))
            continue
        parts = [p.strip() for p in name.split("+")]
        for part in parts:
            if part == "base":
                raise HdrfixError(
                    f"variant {name!r}: base means no phase and combines with none",
                    hint="list it on its own: --variants base,...",
                )
            if part not in phases:
                raise HdrfixError(
                    f"unknown phase {part!r} in variant {name!r} (known: {known})",
                    hint="see `hdrfix list`",
                )
            if is_placeholder(phases[part]):
                raise HdrfixError(
                    f"phase {part!r} is not implemented yet",
                    hint="`hdrfix list` shows it as a placeholder; leave it out",
                )
        if len(set(parts)) != len(parts):
            raise HdrfixError(f"variant {name!r} names a phase twice")
        for part in parts:
            missing = [dep for dep in phases[part].requires if dep not in parts]
            if missing:
                full = "+".join(resolve(parts, phases, with_deps=True))
                raise HdrfixError(
                    f"variant {name!r}: {part} requires {', '.join(missing)}, which the variant "
                    "does not include",
                    hint=f"write {full}",
                )
        variants.append(Variant(name, tuple(resolve(parts, phases, with_deps=False))))
    seen: set[tuple[str, ...]] = set()
    for v in variants:
        key = tuple(sorted(v.phases))
        if key in seen:
            raise HdrfixError(f"variant {v.name!r} is listed twice")
        seen.add(key)
    return variants


def default_variants(phases: Mapping[str, type[Phase]]) -> tuple[list[Variant], list[str]]:
    """:data:`DEFAULT_VARIANTS` that can run with the installed phases, and why others can't."""
    variants, notes = [], []
    for name in DEFAULT_VARIANTS:
        try:
            variants.append(parse_variants(name, phases)[0])
        except HdrfixError as exc:
            notes.append(f"skipped variant {name}: {exc.message}")
    return variants, notes


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise HdrfixError(f"--size takes HxW, e.g. 64x64; got {text!r}")
    h, w = int(match.group(1)), int(match.group(2))
    if h < 8 or w < 8 or h * w > 4096 * 4096:
        raise HdrfixError(f"--size {h}x{w}: frames must be at least 8x8 and at most 4096x4096")
    return h, w


# --------------------------------------------------------------------------- settings


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
    threads: int | None = None  # default: the cores this process may use
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
            "variants": [{"name": v.name, "phases": list(v.phases)} for v in self.variants],
            "steps": self.steps,
            "batch": self.batch,
            "height": self.height,
            "width": self.width,
            "device": self.device,
            "seed": self.seed,
            "eval_batches": self.eval_batches,
            "eval_seed": self.seed + EVAL_SEED_OFFSET,
            "network_from": str(self.network_from) if self.network_from else None,
            "threads": torch.get_num_threads(),
            "half_max": HALF_MAX,
            "clamp_bound": CLAMP_BOUND,
            "mulaw_mu": MU,
            "white_point": WHITE_POINT,
        }


def core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- metrics


def mulaw(x: torch.Tensor) -> torch.Tensor:
    """The fixture's tone map: log1p(mu * max(x / white, 0)) / log1p(mu)."""
    return torch.log1p(MU * torch.clamp(x / WHITE_POINT, min=0)) / math.log1p(MU)


def stored(prediction: torch.Tensor) -> torch.Tensor:
    """The prediction as a half-float frame holds it: NaN -> 0, clipped to [0, 65504]."""
    return torch.nan_to_num(prediction, nan=0.0, posinf=HALF_MAX, neginf=0.0).clamp(0.0, HALF_MAX)


class _Sums:
    """Running sums over batches, reduced to the report's numbers at the end."""

    def __init__(self) -> None:
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

        stats = overflow_stats(prediction, delta_log, ceiling=HALF_MAX, clamp_bound=CLAMP_BOUND)
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


# --------------------------------------------------------------------------- imports


@contextlib.contextmanager
def _isolated_imports(tops: Sequence[str]) -> Iterator[None]:
    """Forget (and afterwards restore) modules under ``tops`` and sys.path as it was."""
    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] in tops}
    path = list(sys.path)
    try:
        yield
    finally:
        _purge(tops)
        for name in [n for n in sys.modules if n.startswith(FILE_MODULE_PREFIX)]:
            del sys.modules[name]
        sys.modules.update(saved)
        sys.path[:] = path


def _purge(tops: Sequence[str]) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in tops]:
        del sys.modules[name]


def _dotted(rel: str) -> str | None:
    """``src/npu/x.py`` -> ``src.npu.x``; None when a part is no identifier."""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if parts and all(p.isidentifier() for p in parts):
        return ".".join(parts)
    return None


def _load_file(root: Path, rel: str, tops: Sequence[str]) -> Any:
    """Execute the module in file ``rel`` itself and register it under its dotted name.

    Its parent packages are registered as bare package modules (a ``__path__`` and nothing
    else) in place of their ``__init__.py``: in the field, ``src/npu/networks/patch/__init__``
    imports siblings that need OpenCV, and the network file needs only torch. Afterwards an
    ``import`` of the dotted name (the trainer's ``from src.npu.networks.patch.patch_network
    import PatchNetwork``) finds this module, and relative or absolute imports of the file's
    siblings resolve through the bare packages. ``root`` is on sys.path while it runs.

    A file whose dotted name is none, or whose top-level name is not one of ``tops`` (the
    names this run may forget afterwards: another module of this process already holds it),
    is registered under a private name instead, without parents.
    """
    import importlib.util
    import types

    dotted = _dotted(rel)
    if dotted is None or dotted.split(".")[0] not in tops:
        dotted = FILE_MODULE_PREFIX + re.sub(r"\W", "_", rel[:-3])
    else:
        parts = dotted.split(".")
        for depth in range(1, len(parts)):
            name = ".".join(parts[:depth])
            package = types.ModuleType(name)
            package.__path__ = [str(root.joinpath(*parts[:depth]))]
            package.__package__ = name
            sys.modules[name] = package
    locations = [str((root / rel).parent)] if rel.endswith("__init__.py") else None
    spec = importlib.util.spec_from_file_location(
        dotted, root / rel, submodule_search_locations=locations
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {rel}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[dotted] = module
    sys.path.insert(0, str(root))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[dotted]
        raise
    finally:
        sys.path.remove(str(root))
    return module


def _import_file(root: Path, rel: str, tops: Sequence[str]) -> Any:
    """Forget earlier copies, then load file ``rel`` of the checkout at ``root`` directly."""
    _purge(tops)
    importlib.invalidate_caches()
    return _load_file(root, rel, tops)


def _import_trainer(root: Path, tops: Sequence[str]) -> Any:
    """The fixture trainer of the checkout at ``root``, its network loaded from its file.

    The trainer imports ``from src.npu.networks.patch.patch_network import PatchNetwork``;
    the package's ``__init__`` would import OpenCV, which hdrfix does not need, so the network
    file is loaded first (:func:`_load_file`) and the import finds it.
    """
    _import_file(root, FIXTURE_NETWORK, tops)
    importlib.invalidate_caches()
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(TRAINER_MODULE)
    finally:
        sys.path.remove(str(root))


# --------------------------------------------------------------------------- checkouts


def _apply_phases(
    root: Path,
    phases: Sequence[str],
    registry: Mapping[str, type[Phase]],
    options: Mapping[str, Any],
) -> list[str]:
    """Apply ``phases`` to the checkout at ``root`` exactly as ``hdrfix apply`` does, with
    ``--exclude`` for every log-domain file but the trainer.

    validate trains the trainer only, so the framework's other copies of the reconstruction
    (the inference module, ``tools/`` scripts) are left as they are on purpose, as a user
    would with ``--exclude``; unexcluded, phase2 rightly refuses them (they would apply tanh
    twice after it).
    """
    if not phases:
        return []
    from hdrfix.core.engine import commit_run, plan_run
    from hdrfix.core.repo import Repo
    from hdrfix.edit.targets import site_files

    repo = Repo(root)
    opts = {**APPLY_OPTIONS, **options, "repo": root}
    # no framework here (HdrfixError): plan_run says so, in the terms of the phase
    with contextlib.suppress(HdrfixError):
        opts["exclude"] = (*opts["exclude"], *site_files(repo, opts).others)
    run = plan_run(repo, list(phases), registry, opts)
    commit_run(repo.root, run, "apply " + " ".join(phases))
    return [change.rel for change in run.changes]


@dataclass
class UserNetwork:
    """The user's repository (``--network-from``): where PatchNetwork lives and its args."""

    root: Path
    rel: str
    kwargs: dict[str, Any]
    tops: tuple[str, ...]


def find_network(root: Path, network: str | None = None) -> str:
    """The file defining ``class PatchNetwork(`` in the repository at ``root`` (or ``network``)."""
    from hdrfix.core.repo import Repo
    from hdrfix.edit.cst.network import network_file

    try:
        return network_file(Repo(root), {"network": network} if network else {})
    except HdrfixError as exc:
        hint = (
            "choose one with --network FILE"
            if "several" in exc.message
            else "pass the repository that holds the network to --network-from"
        )
        raise HdrfixError(f"--network-from: {exc.message}", exc.path, exc.line, hint=hint) from None


def copy_sources(src: Path, dest: Path) -> Path:
    """Copy the Python and YAML files of a repository (as its git listing sees them)."""
    from hdrfix.core.repo import Repo

    for rel in Repo(src).files((".py", ".yaml", ".yml")):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
    return dest


def network_kwargs(root: Path) -> dict[str, Any]:
    """``network:`` constructor args from the repository's training config, where present."""
    from ruamel.yaml import YAML, YAMLError

    from hdrfix.core.repo import Repo
    from hdrfix.edit.targets import DEFAULT_CONFIG, config_files

    repo = Repo(root)
    try:
        configs = config_files(repo, {})
    except HdrfixError:
        return {}
    default = repo.canonical(DEFAULT_CONFIG)
    rel = default if default in configs else configs[0]
    try:
        data = YAML(typ="safe", pure=True).load((root / rel).read_text(encoding="utf-8"))
    except (OSError, YAMLError, UnicodeDecodeError):
        return {}
    section = data.get("network") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        return {}
    return {k: section[k] for k in NETWORK_KEYS if k in section}


def _user_tops(root: Path, rel: str) -> tuple[str, ...]:
    """Top-level import names the user's checkout provides (to forget between variants).

    Names this process has already imported from elsewhere (hdrfix, torch, the standard
    library, a ``tests`` package...) are left alone: forgetting them would break the run.
    """
    names = {p.name for p in root.iterdir() if p.is_dir() and p.name.isidentifier()}
    names |= {p.stem for p in root.glob("*.py") if p.stem.isidentifier()}
    names.add(rel.split("/")[0].removesuffix(".py"))
    taken = {n.split(".")[0] for n in sys.modules} | set(sys.stdlib_module_names)
    names = {n for n in names if n not in taken}
    return tuple(sorted(names | set(FIXTURE_PACKAGES)))


# --------------------------------------------------------------------------- the run


@dataclass
class _Prepared:
    variant: Variant
    framework: Path
    network_root: Path | None
    changed: list[str]
    notes: list[str] = field(default_factory=list)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _rss_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class _Memory:
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


class _Batches:
    """The run's training and held-out batches, the same for every variant.

    Synthetic frames cost CPU time (about 0.1 s per batch of 4 at 270x480), so the training
    batches are made once, before any variant trains, and kept: on the device when training on
    the CPU (up to :data:`CACHE_LIMIT_BYTES`), in host memory when training on a GPU (up to
    :data:`CACHE_LIMIT_HOST_BYTES`, each batch copied over before its step's timing starts).
    Beyond that they are made again at every step.
    """

    #: Channels of a field batch (patch_input 7, patch_target_rgb 3, patch_target_residual 3).
    CHANNELS = 13

    def __init__(self, settings: Settings) -> None:
        s = settings
        self.device = s.device
        self.steps = s.steps
        self.train = SyntheticHDR(s.height, s.width, s.seed, batch_size=s.batch)
        self.held_out = SyntheticHDR(
            s.height, s.width, s.seed + EVAL_SEED_OFFSET, batch_size=s.batch
        )
        limit = CACHE_LIMIT_BYTES if s.device == "cpu" else CACHE_LIMIT_HOST_BYTES
        self._fits = s.batch * self.CHANNELS * s.height * s.width * 4 * s.steps <= limit
        self._cache: dict[int, dict[str, torch.Tensor]] | None = None
        self.eval = [self._slim(self.held_out.batch(i), self.device) for i in range(s.eval_batches)]

    def generate(self) -> None:
        """Make the training batches now (outside the timed, measured training) if they fit."""
        if self._fits and self._cache is None:
            self._cache = {i: self._slim(self.train.batch(i), "cpu") for i in range(self.steps)}

    def _slim(self, batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
        """The trainer's batch format (:func:`hdrfix.validate.synth.field_batch`) on ``device``."""
        if "patch_input" not in batch:
            batch = field_batch(batch)
        return {k: v.to(device) for k, v in batch.items()}

    def step(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.train.batch(i) if self._cache is None else self._cache[i]
        return self._slim(batch, self.device)


def network_input(batch: Mapping[str, torch.Tensor], eps: float = 1e-6) -> torch.Tensor:
    """The fixture trainer's network input in its log mode: [N, 7, H, W].

    ``patch_input`` with its RGB replaced by the per-sample log normalisation ``Xn`` (the
    hole mask, occlusion and motion channels as they are).
    """
    patch_input = batch["patch_input"]
    log_img = torch.log(torch.clamp(patch_input[:, :3], min=0) + eps)
    lo = log_img.amin(dim=(1, 2, 3), keepdim=True)
    hi = log_img.amax(dim=(1, 2, 3), keepdim=True)
    xn = (log_img - lo) / torch.clamp(hi - lo, min=1e-6)
    return torch.cat([xn, patch_input[:, 3:]], dim=1)


def declared_input_channels(net: torch.nn.Module, kwargs: Mapping[str, Any]) -> int | None:
    """The input channels a network declares: its ``input_channels`` argument (as built, else
    its constructor's default) or attribute; None where it says nothing."""
    import inspect

    if "input_channels" in kwargs:
        return int(kwargs["input_channels"])
    value = getattr(net, "input_channels", None)
    if isinstance(value, int):
        return value
    try:
        param = inspect.signature(type(net).__init__).parameters.get("input_channels")
    except (TypeError, ValueError):
        return None
    if param is not None and isinstance(param.default, int):
        return param.default
    return None


def _check_forward(
    net: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    where: str,
    kwargs: Mapping[str, Any] | None = None,
) -> None:
    """The network must take the trainer's [N, 7, H, W] input to a [N, 3, H, W] residual."""
    want_in = TRAINER_INPUT_CHANNELS
    declared = declared_input_channels(net, kwargs or {})
    if declared is not None and declared != want_in:
        raise HdrfixError(
            f"{where}: PatchNetwork declares input_channels={declared}; the trainer feeds "
            f"{want_in} (warped RGB 3, hole mask, occlusion, motion 2)",
            hint="set network.input_channels in the repository's config, or build the "
            "network for 7 channels",
        )
    x = network_input(batch)
    try:
        with torch.no_grad():
            out = net(x)
    except Exception as exc:  # the user's code: any failure is bad input
        raise HdrfixError(
            f"{where}: forward fails on the synthetic input [N, {want_in}, H, W] "
            f"({type(exc).__name__}: {exc})",
            hint="the trainer feeds warped RGB (3) + hole mask (1) + occlusion (1) + motion (2)",
        ) from None
    first = out[0] if isinstance(out, (tuple, list)) else out
    want = (x.shape[0], 3, x.shape[2], x.shape[3])
    if not isinstance(first, torch.Tensor) or tuple(first.shape) != want:
        got = tuple(first.shape) if isinstance(first, torch.Tensor) else type(first).__name__
        raise HdrfixError(
            f"{where}: forward returns {got} for the synthetic input, "
            f"the trainer needs a residual of shape {want}"
        )


def _scale_value(net: torch.nn.Module) -> float | None:
    value = getattr(net, SCALE_KEY, None)
    if not isinstance(value, torch.Tensor):
        return None
    return float(value.detach().float().mean())


@contextlib.contextmanager
def _torch_settings(settings: Settings) -> Iterator[None]:
    """Threads and determinism for the run; the process's previous settings come back after."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.set_num_threads(settings.threads or core_count())
    if settings.device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        # bilinear upsampling has no deterministic CUDA backward: warn (silenced), don't fail
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.use_deterministic_algorithms(True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*deterministic.*")
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


@dataclass
class Built:
    """One variant, ready to train: its patched trainer with the run's initial weights."""

    variant: Variant
    model: Any
    optimiser: Any
    changed: list[str]
    scale_init: float | None
    notes: list[str] = field(default_factory=list)


@dataclass
class Session:
    settings: Settings
    batches: _Batches
    built: list[Built]
    user: UserNetwork | None


@contextlib.contextmanager
def session(settings: Settings, registry: Mapping[str, type[Phase]]) -> Iterator[Session]:
    """Every variant patched, imported and built from the same initial weights.

    Inside, torch runs with the run's threads and determinism and the patched copies are
    importable; afterwards the temporary copies are gone and the process is as it was.
    """
    settings.check()
    user_root = Path(settings.network_from).resolve() if settings.network_from else None
    with tempfile.TemporaryDirectory(prefix="hdrfix-validate-") as tmp_name:
        tmp = Path(tmp_name)
        user: UserNetwork | None = None
        if user_root is not None:
            rel = find_network(user_root, settings.network)
            pristine = copy_sources(user_root, tmp / "user-pristine")
            user = UserNetwork(pristine, rel, network_kwargs(pristine), _user_tops(pristine, rel))
        prepared = [
            _prepare(v, tmp / f"{i}", registry, user) for i, v in enumerate(settings.variants)
        ]
        tops = user.tops if user else FIXTURE_PACKAGES
        with _isolated_imports(tops), _torch_settings(settings):
            batches = _Batches(settings)
            init_state = _initial_state(settings, user, tops, batches)
            built = [_build(settings, prep, user, tops, init_state, batches) for prep in prepared]
            batches.generate()
            yield Session(settings, batches, built, user)


def run(
    settings: Settings,
    registry: Mapping[str, type[Phase]],
    *,
    on_step: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Prepare, train and evaluate every variant; the report as a JSON-ready dict.

    ``on_step(variant_name, step)`` is called after every training step (progress bars).
    """
    started = time.perf_counter()
    with session(settings, registry) as ses:
        _warm_up(ses)
        memory = _Memory(settings.device)
        variants = [_train_variant(ses, b, memory, on_step) for b in ses.built]
        rounds = min(TIMING_ROUNDS, max(3, settings.steps))
        timed = interleaved_step_ms(
            [(b.model, b.optimiser) for b in ses.built], ses.batches, rounds, settings.device
        )
        for result, ms in zip(variants, timed, strict=False):
            result["metrics"]["step_ms"] = ms
        report = _report(ses, variants, memory)
    report["wall_s"] = time.perf_counter() - started
    return report


def _warm_up(ses: Session) -> None:
    """One training step of a throwaway copy of the first variant, so that the one-time costs
    of the process (allocator growth, kernel caches, thread pools) land on no variant."""
    import copy

    model = copy.deepcopy(ses.built[0].model)
    train_step(model, model.configure_optimizers(), ses.batches.step(0), 0)
    del model
    gc.collect()


def _prepare(
    variant: Variant, tmp: Path, registry: Mapping[str, type[Phase]], user: UserNetwork | None
) -> _Prepared:
    """Copy the fixture (and the user's repository) and apply the variant's phases to each.

    A phase that leaves the fixture's network as it is (phase1, bound) needs nothing from the
    user's network either: where the user's repository cannot take such a variant (it holds
    a network but no trainer or config, say), its network is used unpatched, with a note.
    A variant that edits the network (phase2) must apply to the user's repository.
    """
    from hdrfix.validate.fixture import copy_framework

    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", variant.name)
    framework = copy_framework(tmp / slug / "framework")
    fixture_changed = _apply_phases(framework, variant.phases, registry, {})
    changed = [f"framework/{rel}" for rel in fixture_changed]
    notes: list[str] = []
    network_root = None
    if user is not None:
        network_root = tmp / slug / "network-repo"
        shutil.copytree(user.root, network_root)
        try:
            changed += [
                f"network-repo/{rel}"
                for rel in _apply_phases(
                    network_root,
                    variant.phases,
                    registry,
                    {"network": str(network_root / user.rel)},
                )
            ]
        except HdrfixError as exc:
            if FIXTURE_NETWORK in fixture_changed:
                where = f"{exc.path}: " if exc.path and not exc.path.startswith(str(tmp)) else ""
                raise HdrfixError(
                    f"--network-from: {variant.name} edits the network, but the repository "
                    f"cannot take it ({where}{exc.message})",
                    hint="point --network-from at the whole framework (config, trainer and "
                    "network), or leave this variant out",
                ) from None
            notes.append(
                f"{variant.name}: its phases leave the network as it is, and the "
                f"--network-from repository cannot take them ({exc.message}): its "
                "network is used as it is"
            )
    return _Prepared(variant, framework, network_root, changed, notes)


def _load_classes(
    prep: _Prepared, user: UserNetwork | None, tops: Sequence[str]
) -> tuple[Any, type | None]:
    trainer = _import_trainer(prep.framework, tops)
    if user is None or prep.network_root is None:
        return trainer, None
    return trainer, _user_network_class(prep.network_root, user, tops, prep.variant.name)


def _user_network_class(root: Path, user: UserNetwork, tops: Sequence[str], where: str) -> type:
    try:
        module = _import_file(root, user.rel, tops)
    except Exception as exc:  # the user's code
        raise HdrfixError(
            f"--network-from ({where}): cannot import the network ({type(exc).__name__}: {exc})",
            user.rel,
        ) from None
    cls = getattr(module, "PatchNetwork", None)
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        raise HdrfixError(
            f"--network-from ({where}): PatchNetwork is not a torch.nn.Module", user.rel
        )
    return cls


def _build_user_network(cls: type, user: UserNetwork, where: str) -> torch.nn.Module:
    try:
        return cls(**user.kwargs)
    except Exception as exc:  # the user's code
        raise HdrfixError(
            f"--network-from ({where}): PatchNetwork({_kwargs_text(user.kwargs)}) "
            f"fails ({type(exc).__name__}: {exc})",
            user.rel,
        ) from None


#: What the fixture trainer reads from its network besides calling it.
SCALE_FACTOR = "residual_scale_factor"


def _with_scale_factor(net: torch.nn.Module) -> torch.nn.Module:
    """The fixture trainer multiplies the residual by ``patch_network.residual_scale_factor``
    (``scale``); a network without one (the field's older branch) gets 1.0, which is no
    factor at all."""
    if not hasattr(net, SCALE_FACTOR):
        setattr(net, SCALE_FACTOR, 1.0)
    return net


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _build(
    settings: Settings,
    prep: _Prepared,
    user: UserNetwork | None,
    tops: Sequence[str],
    init_state: Mapping[str, torch.Tensor],
    batches: _Batches,
) -> Built:
    from hdrfix.validate.fixture import build_trainer

    name = prep.variant.name
    trainer, net_cls = _load_classes(prep, user, tops)
    config = trainer.load_config(prep.framework / FRAMEWORK_CONFIG)
    torch.manual_seed(settings.seed)
    model = build_trainer(trainer, config)
    if net_cls is not None and user is not None:
        model.patch_network = _with_scale_factor(_build_user_network(net_cls, user, name))
    net = model.patch_network
    scale_init = _scale_value(net)
    missing, unexpected = net.load_state_dict(dict(init_state), strict=False)
    extra = [k for k in missing if k.split(".")[-1] != SCALE_KEY]
    if unexpected or extra:
        raise HdrfixError(
            f"variant {name}: the patched network's parameters differ from the base network's "
            f"beyond {SCALE_KEY} (missing: {', '.join(extra) or '-'}; "
            f"unexpected: {', '.join(unexpected) or '-'})",
            hint="validate compares variants from the same initial weights",
        )
    model.to(settings.device)
    if user is not None:
        _check_forward(net, batches.eval[0], f"--network-from ({name})", user.kwargs)
    return Built(
        prep.variant, model, model.configure_optimizers(), prep.changed, scale_init, prep.notes
    )


def _report(ses: Session, variants: list[dict[str, Any]], memory: _Memory) -> dict[str, Any]:
    import numpy

    from hdrfix import __version__

    settings, user = ses.settings, ses.user
    return {
        "hdrfix": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "device": {
            "type": settings.device,
            "name": device_name(settings.device),
            "threads": torch.get_num_threads(),
            "cuda": torch.version.cuda if settings.device == "cuda" else None,
        },
        "settings": settings.as_json(),
        "network": (
            {"from": str(settings.network_from), "file": user.rel, "kwargs": user.kwargs}
            if user
            else {"from": "fixtures/framework", "file": FIXTURE_NETWORK, "kwargs": {}}
        ),
        "definitions": DEFINITIONS,
        "memory_method": memory.method,
        "memory_definition": MEMORY_METHODS[memory.method],
        "notes": list(settings.notes) + [n for b in ses.built for n in b.notes],
        "variants": variants,
    }


def _initial_state(
    settings: Settings, user: UserNetwork | None, tops: Sequence[str], batches: _Batches
) -> dict[str, torch.Tensor]:
    """The one initial network of the run, built from ``seed`` with the unpatched class."""
    from hdrfix.validate.fixture import build_trainer, framework_dir

    if user is None:
        with _no_bytecode():
            trainer = _import_trainer(framework_dir(), tops)
            config = trainer.load_config(framework_dir() / FRAMEWORK_CONFIG)
        torch.manual_seed(settings.seed)
        net = build_trainer(trainer, config).patch_network
    else:
        cls = _user_network_class(user.root, user, tops, "base")
        torch.manual_seed(settings.seed)
        net = _build_user_network(cls, user, "base")
        _check_forward(
            net,
            batches.eval[0]
            if settings.device == "cpu"
            else {k: v.cpu() for k, v in batches.eval[0].items()},
            "--network-from",
            user.kwargs,
        )
        if not hasattr(net, SCALE_FACTOR):
            settings.notes.append(
                f"--network-from: PatchNetwork has no {SCALE_FACTOR}; the fixture trainer "
                "multiplies its residual by 1.0 instead"
            )
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@contextlib.contextmanager
def _no_bytecode() -> Iterator[None]:
    """Importing from the bundled fixture itself must leave no __pycache__ there."""
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def train_step(
    model: Any, optimiser: Any, batch: Mapping[str, torch.Tensor], step: int
) -> dict[str, Any]:
    """One step of the trainer's own training loop: forward, backward, optimiser step."""
    out = model.training_step(batch, step)
    optimiser.zero_grad()
    out["loss"].backward()
    optimiser.step()
    return out


def interleaved_step_ms(
    trained: Sequence[tuple[Any, Any]], batches: Any, rounds: int, device: str
) -> list[float]:
    """Median ms of a training step per model, the models taking turns step by step.

    Taking turns (in a rotating order, after one untimed warm-up round) means a slow spell of
    the machine hits every variant alike, so the medians compare fairly even on a busy CPU.
    """
    times: list[list[float]] = [[] for _ in trained]
    n = len(trained)
    for r in range(rounds + 1):
        batch = batches.step(r % batches.steps)
        for k in range(n):
            i = (k + r) % n
            model, optimiser = trained[i]
            _sync(device)
            t0 = time.perf_counter()
            train_step(model, optimiser, batch, r)
            _sync(device)
            if r:
                times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) * 1e3 for t in times]


def _train_variant(
    ses: Session, built: Built, memory: _Memory, on_step: Callable[[str, int], None] | None
) -> dict[str, Any]:
    settings, batches = ses.settings, ses.batches
    name, model, optimiser = built.variant.name, built.model, built.optimiser
    phase1 = "phase1" in built.variant.phases

    memory.begin()
    torch.manual_seed(settings.seed)
    train = _Sums()
    losses: list[float] = []
    overflow_curve: list[int] = []
    max_delta_curve: list[float] = []
    times: list[float] = []
    model.train()
    for step in range(settings.steps):
        batch = batches.step(step)
        _sync(settings.device)
        t0 = time.perf_counter()
        out = train_step(model, optimiser, batch, step)
        _sync(settings.device)
        times.append(time.perf_counter() - t0)
        branch = model.last_log_branch
        overflow_curve.append(train.add_branch(branch["prediction"], branch["delta_log"]))
        max_delta_curve.append(float(branch["delta_log"].abs().max()))
        losses.append(float(out["loss"].detach()))
        if on_step:
            on_step(name, step)
    peak = memory.peak_mib()

    held = _Sums()
    model.eval()
    with torch.no_grad():
        for i, batch in enumerate(batches.eval):
            model.validation_step(batch, i)
            branch = model.last_log_branch
            held.add_branch(branch["prediction"], branch["delta_log"])
            held.add_errors(
                branch["prediction"], batch["patch_target_rgb"], batch["patch_input"][:, 3:4]
            )
            held.add_hist(branch["delta_log"])
    model.train()

    tail = losses[-max(1, len(losses) // 10) :]
    metrics = {
        "train_overflow_px": train.overflow_px,
        "train_steps_with_overflow": train.with_overflow,
        "eval_overflow_px": held.overflow_px,
        "eval_batches_with_overflow": held.with_overflow,
        "eval_frame_error": held.err_sum / max(1, held.err_count),
        "eval_hole_error": held.hole_sum / max(1.0, held.hole_count),
        "train_max_abs_delta_log": train.max_abs_delta,
        "eval_max_abs_delta_log": held.max_abs_delta,
        "train_clamped_share": train.clamped / max(1, train.delta_count) if phase1 else None,
        "eval_clamped_share": held.clamped / max(1, held.delta_count) if phase1 else None,
        "learned_scale": _scale_value(model.patch_network),
        "learned_scale_init": built.scale_init,
        "final_train_loss": statistics.fmean(tail),
        "step_ms": None,  # set from the interleaved timing, see interleaved_step_ms
        "train_step_ms": statistics.median(times) * 1e3,
        "peak_memory_mib": peak,
    }
    return {
        "name": name,
        "phases": list(built.variant.phases),
        "changed_files": built.changed,
        "parameters": sum(p.numel() for p in model.patch_network.parameters()),
        "metrics": metrics,
        "curves": {
            "loss": losses,
            "overflow_px": overflow_curve,
            "max_abs_delta_log": max_delta_curve,
        },
        "delta_log_hist": {
            "range": list(HIST_RANGE),
            "bins": HIST_BINS,
            "counts": [int(c) for c in held.hist.tolist()],
        },
    }
