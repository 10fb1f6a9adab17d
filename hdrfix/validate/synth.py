"""Deterministic synthetic HDR frames for training the patch network.

Each sample is one frame-extrapolation problem:

* a scene in log radiance spanning about -6 to 9 (natural log of linear radiance): smooth
  illumination gradients, textures, a per-channel colour cast and a few emissive lights whose
  log radiance peaks between 7 and 9;
* ``target_rgb = exp(log radiance)``, the frame the network must produce;
* ``warped_rgb``, the target as a forward warp of the previous frame would deliver it: every
  target pixel that some source pixel lands on keeps its value, every pixel nothing lands on
  (disocclusions, frame borders, cracks where the motion stretches) is a hole filled with zero.

The motion is a smooth random field plus one or two moving objects whose velocity differs
from the background; their trailing edges open the large holes seen in real warps. One light
per sample is put right next to a hole, as in a lamp being uncovered by a moving object: that
is the configuration in which the log-domain residual overflows in the field.

:func:`field_batch` puts a batch into the format of the field's trainer (docs/design.md §2.1):
``patch_input`` [N, 7, H, W] (warped RGB, hole mask, occlusion, motion), ``patch_target_rgb``
and ``patch_target_residual``.

Generation is deterministic: batch ``i`` of ``SyntheticHDR(h, w, seed)`` comes from a
``torch.Generator`` seeded with ``(seed, i)`` and is identical on every call and platform
(all sampling runs on the CPU; tensors are moved to ``device`` at the end).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

__all__ = [
    "FIELD_CHANNELS",
    "LOG_RADIANCE_RANGE",
    "MOTION_NORM_PX",
    "SyntheticHDR",
    "field_batch",
    "make_batch",
    "make_field_batch",
]

#: Natural-log radiance range of the generated scenes (dark floor, brightest light).
LOG_RADIANCE_RANGE = (-6.0, 9.0)

#: Motion is stored in pixels divided by this, so typical values lie in [-1, 1].
MOTION_NORM_PX = 8.0

_BASE_RANGE = (-6.0, 6.0)
_LIGHT_PEAK = (7.0, 9.0)
_BG_MAX_SPEED_PX = 3.0
_OBJ_MAX_REL_SPEED_PX = 6.0


def _mix_seed(seed: int, index: int) -> int:
    """One generator seed per (seed, batch index).

    The CPU generator keys its stream on the low 32 bits of the seed only, so the pair is
    hashed (splitmix64 finaliser) rather than packed side by side.
    """
    z = (((seed & 0xFFFFFFFF) << 32) | (index & 0xFFFFFFFF)) + 0x9E3779B97F4A7C15
    z &= 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def _smooth_noise(gen: torch.Generator, n: int, c: int, h: int, w: int, cells: int) -> torch.Tensor:
    """Uniform noise on a ``cells``-wide lattice upsampled bicubically: [n, c, h, w], ~[-1, 1]."""
    ch = max(2, round(cells * h / max(h, w)))
    cw = max(2, round(cells * w / max(h, w)))
    coarse = torch.rand(n, c, ch, cw, generator=gen) * 2.0 - 1.0
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)


def _normalise_per_sample(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Affinely map each sample of ``x`` [n, c, h, w] onto [lo, hi] (each [n, 1, 1, 1])."""
    x_min = x.amin(dim=(1, 2, 3), keepdim=True)
    x_max = x.amax(dim=(1, 2, 3), keepdim=True)
    return lo + (x - x_min) / (x_max - x_min).clamp(min=1e-6) * (hi - lo)


def _uniform(gen: torch.Generator, shape: tuple[int, ...], lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen)


def _scene_log_radiance(gen: torch.Generator, n: int, h: int, w: int) -> torch.Tensor:
    """Light-free scene in log radiance: [n, 3, h, w], within ``_BASE_RANGE``."""
    illumination = (
        _smooth_noise(gen, n, 1, h, w, 3)
        + 0.5 * _smooth_noise(gen, n, 1, h, w, 6)
        + 0.25 * _smooth_noise(gen, n, 1, h, w, 12)
    )
    lo = _uniform(gen, (n, 1, 1, 1), _BASE_RANGE[0], _BASE_RANGE[0] + 2.0)
    hi = _uniform(gen, (n, 1, 1, 1), _BASE_RANGE[1] - 2.5, _BASE_RANGE[1] - 0.5)
    log_rad = _normalise_per_sample(illumination, lo, hi)

    # Stripes at a random orientation stand in for surface texture; fine noise for grain.
    ys = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w)
    theta = _uniform(gen, (n, 1, 1, 1), 0.0, math.pi)
    period = _uniform(gen, (n, 1, 1, 1), 4.0, 12.0)
    phase = _uniform(gen, (n, 1, 1, 1), 0.0, 2.0 * math.pi)
    stripes = torch.sin(
        2.0 * math.pi * (xs * torch.cos(theta) + ys * torch.sin(theta)) / period + phase
    )
    texture_gain = _uniform(gen, (n, 1, 1, 1), 0.2, 0.8)
    log_rad = (
        log_rad + texture_gain * stripes + 0.3 * _smooth_noise(gen, n, 1, h, w, max(h, w) // 2)
    )

    # Colour: a global per-sample cast plus slowly varying per-channel tint.
    cast = _uniform(gen, (n, 3, 1, 1), -0.6, 0.6)
    tint = 0.4 * _smooth_noise(gen, n, 3, h, w, 4)
    log_rad = log_rad + cast + tint
    return log_rad.clamp(*_BASE_RANGE)


def _motion_px(gen: torch.Generator, n: int, h: int, w: int) -> torch.Tensor:
    """Piecewise-smooth motion in pixels, (dx, dy) on the source grid: [n, 2, h, w]."""
    background = _uniform(gen, (n, 2, 1, 1), -_BG_MAX_SPEED_PX, _BG_MAX_SPEED_PX)
    motion = background + 1.5 * _smooth_noise(gen, n, 2, h, w, 3)

    ys = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w)
    n_objects = int(torch.randint(1, 3, (1,), generator=gen))
    for _ in range(n_objects):
        cy = _uniform(gen, (n, 1, 1, 1), 0.2 * h, 0.8 * h)
        cx = _uniform(gen, (n, 1, 1, 1), 0.2 * w, 0.8 * w)
        ry = _uniform(gen, (n, 1, 1, 1), 0.1 * h, 0.25 * h)
        rx = _uniform(gen, (n, 1, 1, 1), 0.1 * w, 0.25 * w)
        inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1.0
        rel = _uniform(gen, (n, 2, 1, 1), -_OBJ_MAX_REL_SPEED_PX, _OBJ_MAX_REL_SPEED_PX)
        motion = torch.where(inside, motion + rel, motion)
    return motion


def _splat_counts(motion_px: torch.Tensor) -> torch.Tensor:
    """Forward-splat the source grid by ``motion_px``: [n, 1, h, w], how many pixels landed."""
    n, _, h, w = motion_px.shape
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    tx = torch.round(xs + motion_px[:, 0]).long()
    ty = torch.round(ys + motion_px[:, 1]).long()
    valid = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
    index = torch.where(valid, ty * w + tx, torch.zeros_like(tx)).view(n, -1)
    hits = torch.zeros(n, h * w)
    hits.scatter_add_(1, index, valid.view(n, -1).float())
    return hits.view(n, 1, h, w)


def _add_lights(gen: torch.Generator, log_rad: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """Blend 2-4 emissive lights into ``log_rad``; the first one sits beside a hole."""
    n, _, h, w = log_rad.shape
    ys = torch.arange(h, dtype=torch.float32).view(h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, w)
    # Pixels within 2 px of a hole but not in it: where a light is "being uncovered".
    near = F.max_pool2d(holes, kernel_size=5, stride=1, padding=2) - holes
    out = log_rad.clone()
    for b in range(n):
        n_lights = int(torch.randint(2, 5, (1,), generator=gen))
        for k in range(n_lights):
            weights = near[b].flatten() if k == 0 and near[b].any() else torch.ones(h * w)
            flat = int(torch.multinomial(weights, 1, generator=gen))
            cy, cx = flat // w, flat % w
            radius = float(_uniform(gen, (1,), 1.5, 4.0))
            peak = float(_uniform(gen, (1,), *_LIGHT_PEAK))
            colour = _uniform(gen, (3, 1, 1), -0.5, 0.0)
            colour = colour - colour.max()
            # Quadratic fall-off in log space: a bright core with a soft glow.
            d2 = ((ys - cy) ** 2 + (xs - cx) ** 2) / radius**2
            light = peak + colour - 2.0 * d2
            out[b] = torch.maximum(out[b], light)
    return out.clamp(*LOG_RADIANCE_RANGE)


def _generate(gen: torch.Generator, n: int, h: int, w: int) -> dict[str, torch.Tensor]:
    motion_px = _motion_px(gen, n, h, w)
    counts = _splat_counts(motion_px)
    hit = (counts > 0).float()
    holes = 1.0 - hit
    log_rad = _add_lights(gen, _scene_log_radiance(gen, n, h, w), holes)
    target = torch.exp(log_rad)
    return {
        "warped_rgb": target * hit,
        "hole_mask": holes,
        "occlusion": (counts > 1).float(),
        "motion": motion_px / MOTION_NORM_PX,
        "target_rgb": target,
        "target_log": log_rad,
        "motion_px": motion_px,
    }


def make_batch(
    batch_size: int, height: int, width: int, *, seed: int, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """One batch of synthetic frame-extrapolation samples.

    Same as ``SyntheticHDR(height, width, seed).batch(0, batch_size)``.

    Returns float32 tensors on ``device``:

    * ``warped_rgb`` [B, 3, H, W]: linear HDR radiance of the forward-warped frame, 0 in holes;
    * ``hole_mask`` [B, 1, H, W]: 1 in holes (no source pixel landed), 0 elsewhere; a pixel is a
      hole exactly when all three channels of ``warped_rgb`` are 0;
    * ``occlusion`` [B, 1, H, W]: 1 where more than one source pixel landed (the warp had to
      pick one: a disocclusion's other side), 0 elsewhere; never 1 in a hole;
    * ``motion`` [B, 2, H, W]: (dx, dy) motion on the source grid in units of
      ``MOTION_NORM_PX`` pixels (mostly within [-1, 1]);
    * ``target_rgb`` [B, 3, H, W]: linear HDR radiance of the true frame, > 0 everywhere,
      ``exp`` of a log radiance within ``LOG_RADIANCE_RANGE``;
    * ``target_log`` [B, 3, H, W]: that natural-log radiance;
    * ``motion_px`` [B, 2, H, W]: the motion in pixels.
    """
    return SyntheticHDR(height, width, seed, batch_size=batch_size).batch(
        0, batch_size, device=device
    )


#: The channels of the field trainer's ``patch_input``, in order: [N, 7, H, W].
FIELD_CHANNELS = ("red", "green", "blue", "hole", "occlusion", "motion_x", "motion_y")


def field_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch of :func:`make_batch` in the field trainer's format (docs/design.md §2.1).

    * ``patch_input`` [B, 7, H, W]: ``warped_rgb`` (3, linear HDR, 0 in holes), ``hole_mask``
      (1), ``occlusion`` (1) and ``motion`` (2), concatenated in that order
      (:data:`FIELD_CHANNELS`);
    * ``patch_target_rgb`` [B, 3, H, W]: ``target_rgb``;
    * ``patch_target_residual`` [B, 3, H, W]: ``target_rgb - warped_rgb`` (linear; the whole
      target inside holes, 0 wherever the warp delivered the true value).

    The hole mask of a field batch is ``patch_input[:, 3:4]``.
    """
    warped = batch["warped_rgb"]
    patch_input = torch.cat([warped, batch["hole_mask"], batch["occlusion"], batch["motion"]], 1)
    return {
        "patch_input": patch_input,
        "patch_target_rgb": batch["target_rgb"],
        "patch_target_residual": batch["target_rgb"] - warped,
    }


def make_field_batch(
    batch_size: int, height: int, width: int, *, seed: int, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """``field_batch(make_batch(batch_size, height, width, seed=seed))`` on ``device``."""
    return field_batch(make_batch(batch_size, height, width, seed=seed, device=device))


class SyntheticHDR:
    """An endless, reproducible stream of synthetic HDR batches (see ``make_batch``).

    ``batch(i, batch_size)`` is a pure function of ``(height, width, seed, i, batch_size)``.
    Iterating yields ``batch(0), batch(1), ...`` of ``batch_size`` samples, ``num_batches``
    of them (endless when ``None``).
    """

    def __init__(
        self,
        height: int,
        width: int,
        seed: int,
        *,
        batch_size: int = 4,
        num_batches: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if height < 4 or width < 4:
            raise ValueError(f"frames must be at least 4x4, got {height}x{width}")
        self.height = height
        self.width = width
        self.seed = seed
        self.batch_size = batch_size
        self.num_batches = num_batches
        self.device = device

    def batch(
        self, i: int, batch_size: int | None = None, *, device: str | torch.device | None = None
    ) -> dict[str, torch.Tensor]:
        """The ``i``-th batch; identical on every call."""
        gen = torch.Generator(device="cpu").manual_seed(_mix_seed(self.seed, i))
        n = self.batch_size if batch_size is None else batch_size
        out = _generate(gen, n, self.height, self.width)
        target_device = self.device if device is None else device
        return {k: v.to(target_device) for k, v in out.items()}

    def field_batch(
        self, i: int, batch_size: int | None = None, *, device: str | torch.device | None = None
    ) -> dict[str, torch.Tensor]:
        """The ``i``-th batch in the field trainer's format (:func:`field_batch`)."""
        return field_batch(self.batch(i, batch_size, device=device))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        i = 0
        while self.num_batches is None or i < self.num_batches:
            yield self.batch(i)
            i += 1

    def __len__(self) -> int:
        if self.num_batches is None:
            raise TypeError("an endless SyntheticHDR stream has no length")
        return self.num_batches
