"""The learnable scale phase2 adds, and its starting value: where the patched network and a
migrated checkpoint both get it, so that they agree."""

from __future__ import annotations

from typing import Any

from hdrfix.core.plugin import Option

PARAM = "residual_output_scale"
DEFAULT_SCALE = 6.0  # log_delta_alpha 1.0 x log_delta_abs_max 6.0, as phase1 leaves the config
ALPHA, ABS_MAX = "log_delta_alpha", "log_delta_abs_max"
#: The trainer attributes that make up Mode A's cap; the network's scale replaces them.
CAP_ATTRS = frozenset({ALPHA, ABS_MAX})
# phase2's option, and migrate-checkpoint's --scale-init: one check wherever the value is given
SCALE_INIT = Option(
    "scale_init", "initial residual_output_scale (default alpha * abs_max)", float, above=0.0
)


def mode_a_cap(text: str, rel: str) -> tuple[Any, Any]:
    """(log_delta_alpha, log_delta_abs_max) of a config's target documents, as written:
    Mode A's cap is their product, the value the scale starts from."""
    from hdrfix.kit.configedit import value_in

    # abs_max first: documents without it are no targets, so lacking it must not read as
    # lacking alpha
    abs_max = value_in(text, rel, ABS_MAX)
    return value_in(text, rel, ALPHA), abs_max


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
