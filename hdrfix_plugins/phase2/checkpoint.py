"""Migrating checkpoints saved before phase2, so that they load with ``strict=True``.

phase2 gives ``PatchNetwork`` a new parameter, ``residual_output_scale``; a state_dict saved
before it lacks the key and ``load_state_dict(strict=True)`` refuses it. Migration adds
``<prefix>residual_output_scale = tensor([alpha * abs_max])`` for every PatchNetwork in the
checkpoint: with that value the migrated model computes exactly what the old one did
(Mode A was ``alpha * tanh(r) * abs_max * scale``, it becomes ``(tanh(r) * s) * scale``).

A PatchNetwork is recognised by its parameter names, not by a single key: under its prefix the
checkpoint holds the first and the last layer of :data:`NETWORK_KEYS` (the fixture network's
state_dict, a 5-level U-Net like the field's; a network of another depth has other levels
between the same two ends). Prefixes come out as ``patch_network.``,
``student_model.patch_network.``, or ``""`` for a bare network.

Only this module imports torch; it is loaded by ``hdrfix migrate-checkpoint`` alone. Loading uses
``weights_only=True`` (a checkpoint cannot run code), and the output is written to a temporary
file beside ``dest`` and moved into place, so ``dest`` is complete or absent.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.lines import NEWLINE
from hdrfix_plugins.phase2 import scale

PARAM = scale.PARAM

#: ``PatchNetwork().state_dict()`` keys of the fixture network, in order (tests keep them in step).
NETWORK_KEYS = (
    "enc1.feature.weight",
    "enc1.feature.bias",
    "enc1.gate.weight",
    "enc1.gate.bias",
    "enc2.feature.weight",
    "enc2.feature.bias",
    "enc2.gate.weight",
    "enc2.gate.bias",
    "enc3.feature.weight",
    "enc3.feature.bias",
    "enc3.gate.weight",
    "enc3.gate.bias",
    "enc4.feature.weight",
    "enc4.feature.bias",
    "enc4.gate.weight",
    "enc4.gate.bias",
    "bottleneck.feature.weight",
    "bottleneck.feature.bias",
    "bottleneck.gate.weight",
    "bottleneck.gate.bias",
    "dec4.feature.weight",
    "dec4.feature.bias",
    "dec4.gate.weight",
    "dec4.gate.bias",
    "dec3.feature.weight",
    "dec3.feature.bias",
    "dec3.gate.weight",
    "dec3.gate.bias",
    "dec2.feature.weight",
    "dec2.feature.bias",
    "dec2.gate.weight",
    "dec2.gate.bias",
    "dec1.feature.weight",
    "dec1.feature.bias",
    "dec1.gate.weight",
    "dec1.gate.bias",
    "output_conv.weight",
    "output_conv.bias",
)


def _layer(key: str) -> str:
    return key.split(".")[0]


#: The two ends every PatchNetwork has, whatever its depth: the first and the last layer's keys.
ENDS = tuple(
    k for k in NETWORK_KEYS if _layer(k) in {_layer(NETWORK_KEYS[0]), _layer(NETWORK_KEYS[-1])}
)
_OUTPUT_WEIGHT = next(k for k in ENDS if _layer(k) == _layer(NETWORK_KEYS[-1]))


@dataclass(frozen=True)
class MigrationReport:
    src: Path
    dest: Path
    layout: str  # "state_dict" or "lightning"
    prefixes: tuple[str, ...]  # every PatchNetwork found
    value: float
    value_source: str
    added: tuple[str, ...]  # keys added
    present: tuple[str, ...]  # keys that were already there, left as they were
    kept: tuple[str, ...]  # the other top-level entries of a Lightning checkpoint
    optimizer: tuple[str, ...] = ()  # what was done to optimizer_states, in words
    weights_only: bool = False  # optimizer_states left as they were, on request


def migrate_checkpoint(
    src: Path,
    dest: Path,
    *,
    config: Path | None,
    scale_init: float | str | None,
    weights_only: bool = False,
) -> MigrationReport:
    """Write ``dest``: ``src`` plus ``residual_output_scale`` for each PatchNetwork in it, and
    for a Lightning checkpoint its entry in ``optimizer_states`` (unless ``weights_only``).

    Raises HdrfixError (nothing written) for: ``dest`` equal to ``src`` or already existing, a
    file torch cannot load with ``weights_only=True``, an unknown layout, no PatchNetwork, an
    optimizer whose layout cannot be matched to the parameters.
    """
    src, dest = Path(src), Path(dest)
    _check_paths(src, dest)
    value, source = scale_value(config, scale_init)
    checkpoint = _load(src)
    layout, state = _state_dict(checkpoint, src)
    prefixes = find_prefixes(state)
    if not prefixes:
        layers = " and ".join(sorted({f"{_layer(k)}.*" for k in ENDS}))
        raise HdrfixError(
            f"no PatchNetwork found: no prefix holds both {layers}",
            str(src),
            hint="pass a checkpoint of PatchNetwork or of a module holding it",
        )
    import torch

    from hdrfix_plugins.phase2 import optimizer_states

    params = optimizer_states.parameter_keys(state)
    added, present = [], []
    for prefix in prefixes:
        key = prefix + PARAM
        if key in state:
            present.append(key)
            continue
        like = state[prefix + _OUTPUT_WEIGHT]
        state[key] = torch.tensor([value], dtype=like.dtype)
        added.append(key)
    optimizer: list[str] = []
    if layout == "lightning" and not weights_only:
        new = {key: state[key] for key in added}
        optimizer = optimizer_states.migrate(checkpoint, params, new, str(src))
    _save_atomic(checkpoint, dest)
    kept = tuple(k for k in checkpoint if k != "state_dict") if layout == "lightning" else ()
    return MigrationReport(
        src,
        dest,
        layout,
        tuple(prefixes),
        value,
        source,
        tuple(added),
        tuple(present),
        tuple(map(str, kept)),
        tuple(optimizer),
        weights_only,
    )


def report_lines(r: MigrationReport) -> list[str]:
    """What ``hdrfix migrate-checkpoint`` prints of a migration."""
    layout = "Lightning checkpoint" if r.layout == "lightning" else "state_dict"
    lines = [f"{r.src} -> {r.dest} ({layout}, {len(r.prefixes)} PatchNetwork(s))"]
    lines += [f"  added   {key} = [{r.value!r}]" for key in r.added]
    lines += [f"  present {key} (left as it was)" for key in r.present]
    lines.append(f"  value   {r.value!r}: {r.value_source}")
    lines += [f"  {line}" for line in r.optimizer]
    if r.kept:
        lines.append(f"  kept    {', '.join(r.kept)}")
    if "optimizer_states" in r.kept and r.added and r.weights_only:
        lines.append(
            "  note: optimizer_states do not cover the new parameter; resume with a "
            "fresh optimizer (load the weights only)"
        )
    return lines


def scale_value(config: Path | None, scale_init: float | str | None) -> tuple[float, str]:
    """``scale_init``, else ``log_delta_alpha * log_delta_abs_max`` from the config, else 6.0:
    the value the patched network starts from (phase2's ``_scale_init``), strictly read."""
    from hdrfix.kit.targets import SECTION

    if scale_init is not None:
        return float(scale.SCALE_INIT.convert(scale_init, "--scale-init")), "--scale-init"
    if config is None:
        return scale.DEFAULT_SCALE, "the default after phase1 (alpha 1.0 x abs_max 6.0)"
    alpha, abs_max = scale.mode_a_cap(_read_config(Path(config)), str(config))
    for key, number in ((scale.ABS_MAX, abs_max), (scale.ALPHA, alpha)):
        if not scale.is_number(number):
            raise HdrfixError(
                f"has no numeric {SECTION}.{key}",
                str(config),
                hint="pass the training config, or --scale-init VALUE",
            )
    value = float(alpha) * float(abs_max)
    if value <= 0:
        raise HdrfixError(
            f"{SECTION}.log_delta_abs_max is not positive (Mode B): no Mode A scale to carry over",
            str(config),
            hint="pass --scale-init VALUE",
        )
    return value, (
        f"log_delta_alpha {float(alpha)!r} x log_delta_abs_max {float(abs_max)!r} in {config}"
    )


def _read_config(config: Path) -> str:
    """The config's text, as ``apply`` reads YAML: UTF-8, with or without a BOM."""
    try:
        raw = config.read_bytes()
    except OSError as exc:
        raise HdrfixError(f"cannot read the config ({exc.strerror})", str(config)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = len(NEWLINE.findall(raw[: exc.start].decode("utf-8-sig"))) + 1
        raise HdrfixError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})", str(config), line, "save it as UTF-8"
        ) from None


def find_prefixes(state: Mapping[str, Any]) -> list[str]:
    """Every prefix under which the state holds both ends of a PatchNetwork, in key order."""
    found: list[str] = []
    for key in state:
        if isinstance(key, str) and key.endswith(_OUTPUT_WEIGHT):
            prefix = key[: len(key) - len(_OUTPUT_WEIGHT)]
            if (
                (prefix == "" or prefix.endswith("."))
                and prefix not in found
                and all(prefix + end in state for end in ENDS)
            ):
                found.append(prefix)
    return found


def _check_paths(src: Path, dest: Path) -> None:
    if not src.is_file():
        raise HdrfixError("no such checkpoint", str(src))
    if dest.exists() and dest.resolve() == src.resolve():
        raise HdrfixError(
            "refusing to overwrite the input checkpoint",
            str(dest),
            hint="write the migrated checkpoint to a new file",
        )
    if dest.exists():
        raise HdrfixError(
            "already exists", str(dest), hint="remove it first, or choose another output file"
        )
    if not dest.parent.is_dir():
        raise HdrfixError("folder not found", str(dest.parent))


def _load(src: Path) -> Any:
    import re

    import torch

    try:
        return torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if refused:
            raise HdrfixError(
                f"torch.load(weights_only=True) refuses it: it holds a "
                f"{refused.group(1)} object, not only tensors and plain "
                "containers",
                str(src),
                hint="re-save its state_dict alone; hdrfix never runs pickled code",
            ) from None
        detail = text.split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
        detail = re.sub(r"\s+", " ", detail).strip()[:120]
        raise HdrfixError(
            f"not a PyTorch checkpoint (torch.load: {type(exc).__name__} {detail})", str(src)
        ) from None


def _state_dict(checkpoint: Any, src: Path) -> tuple[str, dict]:
    """A bare state_dict, or a Lightning-style dict whose ``state_dict`` entry is one."""
    if _is_state(checkpoint):
        return "state_dict", checkpoint
    if isinstance(checkpoint, dict) and _is_state(checkpoint.get("state_dict")):
        return "lightning", checkpoint["state_dict"]
    kind = type(checkpoint).__name__
    raise HdrfixError(
        f"unknown checkpoint layout ({kind}): expected a state_dict or a dict "
        "with a 'state_dict' entry",
        str(src),
    )


def _is_state(value: Any) -> bool:
    import torch

    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def _save_atomic(checkpoint: Any, dest: Path) -> None:
    import torch

    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".hdrfix-tmp", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        if dest.exists():  # appeared while we were writing: never clobber it
            raise HdrfixError("already exists", str(dest), hint="remove it first")
        os.replace(tmp, dest)
    except OSError as exc:
        raise HdrfixError(
            f"could not write ({exc.strerror or exc})", str(dest), hint="nothing was written"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
