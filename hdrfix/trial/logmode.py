"""Log mode under stress: the network's raw output blown up, and the residual read as computed.

Three steps of a freshly initialised network never push the residual near any bound, so a
missing clamp would pass unseen. As ``tests/test_modes.py`` does to the fixture, the network's
output layer is made to answer huge (``x * 1e4 + 50``): the residual then saturates whatever
bounds it, and an unbounded one shows in the table (and as overflow of the reconstruction).

The blow-up sits on the network's last layer with weights of its own, not on the network's
return: what the network does after that layer (phase2's ``tanh * scale``) is part of what is
being tried.
"""

from __future__ import annotations

import contextlib
import operator
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from hdrfix.trial.probe import Probe

BLOW_UP_GAIN = 1e4
BLOW_UP_OFFSET = 50.0


def output_layer(net: torch.nn.Module) -> tuple[str, torch.nn.Module] | None:
    """The last-registered module without children that holds parameters of its own."""
    found = None
    for name, module in net.named_modules():
        if not any(True for _ in module.children()) and any(
            True for _ in module.parameters(recurse=False)
        ):
            found = (name, module)
    return found


def blow_up(model: Any, network_attrs: tuple[str, ...]) -> str | None:
    """Make the network's output layer answer ``x * 1e4 + 50``; says what it hooked, or None
    where no network of the log arm is found on ``model``."""
    for path in network_attrs:
        try:
            net = operator.attrgetter(path)(model)
        except AttributeError:
            continue
        if not isinstance(net, torch.nn.Module):
            continue
        layer = output_layer(net)
        if layer is None:
            continue
        name, module = layer

        def huge(_module: Any, _args: Any, out: Any) -> Any:
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                return out * BLOW_UP_GAIN + BLOW_UP_OFFSET
            return out

        module.register_forward_hook(huge)
        return f"{path}.{name}" if name else path
    return None


@contextlib.contextmanager
def residual_watch(cls: type, residuals: Mapping[str, str], probe: Probe) -> Iterator[None]:
    """While the block runs, each method of ``cls`` named in ``residuals`` reports the value of
    its residual local (``delta_log``) to ``probe`` as it returns: the trainer's own residual,
    whatever else it keeps."""
    codes: dict[types.CodeType, str] = {}
    for method, name in residuals.items():
        code = getattr(getattr(cls, method, None), "__code__", None)
        if isinstance(code, types.CodeType):
            codes[code] = name
    if not codes:
        yield
        return
    previous = sys.getprofile()

    def profile(frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "return":
            name = codes.get(frame.f_code)
            if name is not None:
                probe.saw_delta(frame.f_locals.get(name))

    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)
