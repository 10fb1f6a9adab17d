"""The user's network (``--network-from``): finding it, building it, checking it fits the trainer.

The fixture trainer feeds its network [N, 7, H, W] and expects a [N, 3, H, W] residual; a user's
``PatchNetwork`` is checked against that before any variant trains, so that a mismatch is one
line of error instead of a traceback deep in a training step.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hdrfix.lang.errors import HdrfixError
from hdrfix.validate.fixture import FIXTURE_PACKAGES
from hdrfix.validate.importing import import_file

NETWORK_KEYS = ("input_channels", "output_channels", "base_channels", "residual_scale_factor")

#: The channels the fixture trainer feeds its network: warped RGB (log-normalised in the log
#: mode), hole mask, occlusion, motion x2 (hdrfix.validate.synth.FIELD_CHANNELS).
TRAINER_INPUT_CHANNELS = 7

#: What the fixture trainer reads from its network besides calling it.
SCALE_FACTOR = "residual_scale_factor"


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
    from hdrfix.kit.targets import network_file

    try:
        return network_file(Repo(root), {"network": network} if network else {})
    except HdrfixError as exc:
        hint = (
            "choose one with --network FILE"
            if "several" in exc.message
            else "pass the repository that holds the network to --network-from"
        )
        raise HdrfixError(f"--network-from: {exc.message}", exc.path, exc.line, hint=hint) from None


def network_kwargs(root: Path) -> dict[str, Any]:
    """``network:`` constructor args from the repository's training config, where present."""
    from ruamel.yaml import YAML, YAMLError

    from hdrfix.core.repo import Repo
    from hdrfix.kit.targets import DEFAULT_CONFIG, config_files

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


def user_tops(root: Path, rel: str) -> tuple[str, ...]:
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


def user_network_class(root: Path, user: UserNetwork, tops: Sequence[str], where: str) -> type:
    try:
        module = import_file(root, user.rel, tops)
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


def build_user_network(cls: type, user: UserNetwork, where: str) -> torch.nn.Module:
    try:
        return cls(**user.kwargs)
    except Exception as exc:  # the user's code
        raise HdrfixError(
            f"--network-from ({where}): PatchNetwork({_kwargs_text(user.kwargs)}) "
            f"fails ({type(exc).__name__}: {exc})",
            user.rel,
        ) from None


def with_scale_factor(net: torch.nn.Module) -> torch.nn.Module:
    """The fixture trainer multiplies the residual by ``patch_network.residual_scale_factor``
    (``scale``); a network without one (the field's older branch) gets 1.0, which is no
    factor at all."""
    if not hasattr(net, SCALE_FACTOR):
        setattr(net, SCALE_FACTOR, 1.0)
    return net


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


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


def check_forward(
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
