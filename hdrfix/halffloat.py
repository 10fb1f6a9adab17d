"""The half-float limit HDR frames are stored under, and the log-domain bound that keeps an
``exp`` at or below it. Plain Python (``struct`` for float32), so that ``hdrfix status`` can
compute it without torch, and ``hdrfix.nn`` uses the very same value."""

from __future__ import annotations

import functools
import math
import struct

HALF_MAX = 65504.0  # the largest finite float16
FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32


@functools.lru_cache(maxsize=64)  # called per training step by hdrfix.nn.bound_log_output
def log_ceiling(ceiling: float = HALF_MAX) -> float:
    """The largest float32 ``c`` with ``exp(c) <= ceiling``, in float64 and rounded to float32.

    ``math.log(ceiling)`` is NOT safe: for 65504 it rounds up in float32 to 11.0898666, whose
    float32 ``exp`` is 65504.0078 (and in float64 ``exp(log(65504))`` is 65504.000000000015),
    so a "bounded" output would still count as overflow by the framework's own test
    ``prediction > 65504``. This steps down from ``float32(math.log(ceiling))`` one float32 ulp
    at a time until ``exp`` no longer exceeds ``ceiling``; for 65504 the result is
    ``11.089865684509277``, whose float32 ``exp`` is 65503.945: 14 float32 ulps of headroom
    for a device ``exp`` that rounds differently. The value is exactly representable in
    float32, so a float32 tensor clamps at this value and no other. ``ceiling`` must be finite
    and above 1 (a positive log, so stepping down is one integer step on its bits).
    """
    if not (math.isfinite(ceiling) and ceiling > 1.0):
        raise ValueError(f"ceiling must be finite and above 1, got {ceiling!r}")
    value = _f32(math.log(ceiling))
    while math.exp(value) > ceiling or _f32(math.exp(value)) > ceiling:
        (bits,) = struct.unpack("<I", struct.pack("<f", value))
        (value,) = struct.unpack("<f", struct.pack("<I", bits - 1))  # next float32 down
    return value


def _f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def in_float32(x: float) -> bool:
    """Whether ``x`` survives becoming a float32 as itself: finite, not past the float32 range,
    and not a nonzero number that rounds to 0 (1e-50 would clamp or weigh at 0)."""
    if not math.isfinite(x):
        return False
    try:
        rounded = _f32(x)
    except OverflowError:
        return False
    return math.isfinite(rounded) and (rounded != 0.0 or x == 0.0)
