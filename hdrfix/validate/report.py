"""Rendering a ``validate`` result: the terminal table, ``report.json`` and ``report.png``.

Works on the JSON-ready dict :func:`hdrfix.validate.run.run` returns; needs no torch. matplotlib
is imported only by :func:`write_png` (Agg backend, no display needed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE = "base"


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    fmt: Callable[[Any, dict[str, Any]], str]
    relative: bool = True  # show the change against base


def _int(value: Any, _: dict[str, Any]) -> str:
    return f"{int(value):,}"


def _steps(value: Any, report: dict[str, Any]) -> str:
    return f"{int(value)}/{report['settings']['steps']}"


def _batches(value: Any, report: dict[str, Any]) -> str:
    return f"{int(value)}/{report['settings']['eval_batches']}"


def _num(value: Any, _: dict[str, Any]) -> str:
    return f"{value:.3g}"


def _fixed(digits: int) -> Callable[[Any, dict[str, Any]], str]:
    return lambda value, _: f"{value:.{digits}f}"


def _share(value: Any, _: dict[str, Any]) -> str:
    return f"{100 * value:.2f}%"


ROWS = (
    Row("train_overflow_px", "overflow px, train", _int),
    Row("train_steps_with_overflow", "steps with overflow, train", _steps),
    Row("eval_overflow_px", "overflow px, held-out", _int),
    Row("eval_batches_with_overflow", "batches with overflow, held-out", _batches),
    Row("eval_frame_error", "frame error (mu-law L1)", _fixed(4)),
    Row("eval_hole_error", "hole error (mu-law L1)", _fixed(4)),
    Row("eval_max_abs_delta_log", "max |delta_log|, held-out", _fixed(2)),
    Row("train_clamped_share", "residuals at the clamp bound, train", _share, relative=False),
    Row("learned_scale", "learned scale", _fixed(3), relative=False),
    # each variant's own objective (phases change the loss): no change against base
    Row("final_train_loss", "train loss, last 10% of steps", _num, relative=False),
    Row("step_ms", "step time, median ms", _fixed(1)),
    Row("peak_memory_mib", "peak memory MiB", _fixed(1)),
)


def relative(base: Any, value: Any) -> float | None:
    """(value - base) / base, or None when it has no meaning (missing, zero or non-finite)."""
    if not _finite(base) or not _finite(value) or base == 0:
        return None
    return (value - base) / abs(base)


def format_change(base: Any, value: Any) -> str:
    """``-99.5%``, ``+470%``; ``=`` for no change; ``new`` when base was 0 and this is not.

    A change too small for one decimal keeps its direction: ``+0.0%`` or ``-0.0%``."""
    if not _finite(base) or not _finite(value):
        return ""
    if value == base:
        return "="
    if base == 0:
        return "new"
    change = 100.0 * (value - base) / abs(base)
    if abs(change) < 0.05:
        return "+0.0%" if change > 0 else "-0.0%"
    if abs(change) >= 999.5:
        return f"{change:+,.0f}%"
    return f"{change:+.1f}%"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def table(report: dict[str, Any]) -> list[str]:
    """The terminal table: one row per metric, one column per variant, change against base."""
    variants = report["variants"]
    base = next((v for v in variants if v["name"] == BASE), None)
    header = ["metric"] + [v["name"] for v in variants]
    rows = [header]
    for row in ROWS:
        cells = [row.label]
        for v in variants:
            value = v["metrics"].get(row.key)
            if not _finite(value):
                cells.append("-" if value is None else str(value))
                continue
            text = row.fmt(value, report)
            if row.relative and base is not None and v is not base:
                change = format_change(base["metrics"].get(row.key), value)
                if change:
                    text = f"{text} ({change})"
            cells.append(text)
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, cells in enumerate(rows):
        left = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=False)]
        lines.append("  ".join([left] + rest).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def footer(report: dict[str, Any]) -> list[str]:
    """What the numbers are, below the table."""
    s = report["settings"]
    dev = report["device"]
    base = (
        ""
        if any(v["name"] == BASE for v in report["variants"])
        else " (no base variant: no change shown)"
    )
    settings_line = (
        f"{s['steps']} steps, batch {s['batch']} of {s['height']}x{s['width']}, seed {s['seed']}, "
        f"{s['eval_batches']} held-out batches; {dev['type']} ({dev['name']}; "
        f"{_at_once(dev)}); (+x%) is the change against base{base}"
    )
    meaning = (
        "overflow = elements of the raw prediction above 65504 or not finite; errors after "
        "mu-law tone mapping (mu=300); holes = pixels no source pixel landed on; step time "
        "measured with the variants taking turns"
    )
    return [
        settings_line,
        meaning,
        f"memory: {report['memory_definition']}",
        *(f"note: {note}" for note in report.get("notes") or ()),
    ]


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _at_once(device: dict[str, Any]) -> str:
    """How the variants trained: in how many processes at a time, with how many threads."""
    threads = plural(int(device.get("threads") or 1), "torch thread")
    workers = int(device.get("workers") or 1)
    if workers == 1:
        return f"one variant at a time, {threads}"
    return f"{workers} variants at a time, {threads} each"


def _clean(value: Any) -> Any:
    """JSON has no inf/NaN: a non-finite number becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def with_changes(report: dict[str, Any]) -> dict[str, Any]:
    """The report plus, per variant, the relative change of each metric against base."""
    out = dict(report)
    base = next((v for v in report["variants"] if v["name"] == BASE), None)
    if base is not None:
        out["relative_to_base"] = {
            v["name"]: {k: relative(base["metrics"].get(k), val) for k, val in v["metrics"].items()}
            for v in report["variants"]
            if v is not base
        }
    return out


def write_json(report: dict[str, Any], path: Path) -> Path:
    path.write_text(
        json.dumps(_clean(with_changes(report)), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return path


PANELS = (
    "overflow px in training (all steps)",
    "frame and hole error (held-out)",
    "cumulative overflow px over training",
    "delta_log histogram (held-out)",
)

#: Line styles (and, past the named ones, markers) so that curves differ in print and for
#: readers who cannot tell the colours apart, not by colour alone.
STYLES = (
    ("-", ""),
    ("--", ""),
    ("-.", ""),
    (":", ""),
    ((0, (5, 1, 1, 1, 1, 1)), "o"),
    ((0, (1, 3)), "s"),
    ((0, (8, 2)), "^"),
    ((0, (3, 1, 3, 3)), "D"),
)
HOLE_HATCH = "///"
#: How far below zero the overflow axes start (symlog's linear part), so zero is visible.
ZERO_LIFT = 0.3
#: The label of the line standing for a bar of no height.
ZERO_BAR = "no overflow"


def overflow_label(metrics: dict[str, Any], steps: int, base: dict[str, Any] | None) -> str:
    """The text on a headline bar: report.json's train_overflow_px exactly, its change against
    base, and in how many steps it happened."""
    px = metrics["train_overflow_px"]
    change = format_change(base["train_overflow_px"], px) if base is not None else ""
    first = f"{int(px):,}" + (f" ({change})" if change and metrics is not base else "")
    return f"{first}\n{int(metrics['train_steps_with_overflow'])}/{steps} steps"


def _tick(name: str) -> str:
    """Long combined variant names break after each ``+`` so that neighbours do not collide."""
    return name.replace("+", "+\n")


def figure(report: dict[str, Any]) -> Any:
    """report.png as a matplotlib Figure (Agg, no display needed).

    Top left, the headline: overflow pixels per variant (log scale, zero at the floor, the
    count printed on each bar). Top right: frame and hole error per variant side by side.
    Below: when the overflow happened (cumulative over the steps) and the residuals the
    network produced (held-out delta_log histogram: a clamp shows as a spike). Losses are
    left out on purpose: phases change the loss, so curves of different objectives do not
    compare (report.json keeps them).
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    variants = report["variants"]
    names = [v["name"] for v in variants]
    colours = [f"C{i % 10}" for i in range(len(variants))]
    styles = [STYLES[i % len(STYLES)] for i in range(len(variants))]
    steps = report["settings"]["steps"]
    fig = Figure(figsize=(13, 9), dpi=100, layout="constrained")
    axes = fig.subplot_mosaic([["overflow", "errors"], ["curve", "hist"]])

    _overflow_bars(axes["overflow"], variants, colours, steps)
    _error_bars(axes["errors"], variants, colours)

    ax = axes["curve"]
    for v, c, (ls, marker) in zip(variants, colours, styles, strict=True):
        total, curve = 0, []
        for px in v["curves"]["overflow_px"]:
            total += px
            curve.append(total)
        ax.plot(
            range(1, len(curve) + 1),
            curve,
            color=c,
            ls=ls,
            marker=marker or None,
            markevery=max(1, len(curve) // 8),
            label=f"{v['name']}: {total:,}",  # the total in words: a line at 0 is one too
            lw=1.6,
            clip_on=False,
        )
    ax.set(title=PANELS[2], xlabel="training step", ylabel="overflow elements so far")
    ax.set_yscale("symlog", linthresh=1)
    # zero a little above the axis: a variant without overflow is a line, not the axis itself
    ax.set_ylim(bottom=-ZERO_LIFT)
    ax.axhline(0, color="0.6", lw=0.6, zorder=0)
    ax.legend(fontsize="small", title="total overflow", title_fontsize="small")

    ax = axes["hist"]
    for v, c, (ls, _) in zip(variants, colours, styles, strict=True):
        hist = v["delta_log_hist"]
        lo, hi = hist["range"]
        n = hist["bins"]
        edges = [lo + (hi - lo) * i / n for i in range(n + 1)]
        ax.stairs(hist["counts"], edges, color=c, ls=ls, label=v["name"], lw=1.4)
    ax.set(
        title=PANELS[3], xlabel="delta_log (values beyond +-20 in the end bins)", ylabel="elements"
    )
    ax.set_yscale("symlog", linthresh=1)
    ax.legend(fontsize="small")

    s = report["settings"]
    fig.suptitle(
        f"hdrfix validate: {', '.join(names)}; {s['steps']} steps, batch {s['batch']} of "
        f"{s['height']}x{s['width']}, {report['device']['type']}, seed {s['seed']}\n"
        "overflow = output elements above 65504 (half-float max) or not finite; "
        "errors = mean |mu-law(output) - mu-law(target)|, mu=300",
        fontsize="medium",
    )
    return fig


def _overflow_bars(ax: Any, variants: list[dict[str, Any]], colours: list[str], steps: int) -> None:
    xs = range(len(variants))
    counts = [max(0, int(v["metrics"]["train_overflow_px"])) for v in variants]
    base = next((v["metrics"] for v in variants if v["name"] == BASE), None)
    bars = ax.bar(xs, counts, color=colours, width=0.6)
    # symlog: linear below 1, so a variant with no overflow sits at the floor with its "0"
    # printed, where a plain log scale could not draw it at all; its bar, of no height, is
    # drawn as a thick line in its colour a little above the axis
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(-ZERO_LIFT, max(10, max(counts)) * 8)
    ax.axhline(0, color="0.6", lw=0.6, zorder=0)
    for x, count, colour in zip(xs, counts, colours, strict=True):
        if count == 0:
            ax.hlines(0, x - 0.3, x + 0.3, colors=colour, lw=4, label=ZERO_BAR)
    ax.bar_label(
        bars,
        [overflow_label(v["metrics"], steps, base) for v in variants],
        padding=3,
        fontsize="small",
    )
    ax.set_xticks(list(xs), [_tick(v["name"]) for v in variants])
    ax.set(title=PANELS[0], ylabel="elements > 65504 or not finite (log)")


def _error_bars(ax: Any, variants: list[dict[str, Any]], colours: list[str]) -> None:
    width = 0.38
    for i, (v, c) in enumerate(zip(variants, colours, strict=True)):
        m = v["metrics"]
        frame, hole = (
            m[k] if _finite(m[k]) else 0.0 for k in ("eval_frame_error", "eval_hole_error")
        )
        bars = ax.bar(
            [i - width / 2, i + width / 2],
            [frame, hole],
            width=width,
            color=c,
            edgecolor="black",
            lw=0.5,
            hatch=["", HOLE_HATCH],
        )
        ax.bar_label(bars, [f"{frame:.4f}", f"{hole:.4f}"], padding=2, fontsize="x-small")
    ax.set_xticks(range(len(variants)), [_tick(v["name"]) for v in variants])
    ax.set(title=PANELS[1], ylabel="mu-law L1 (lower is better)")
    ax.margins(y=0.12)
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(facecolor="white", edgecolor="black", label="frame (all pixels)"),
            Patch(facecolor="white", edgecolor="black", hatch=HOLE_HATCH, label="holes only"),
        ],
        fontsize="small",
    )


def write_png(report: dict[str, Any], path: Path) -> Path:
    """Write ``report.png`` (what it shows: :func:`figure`, which tests inspect)."""
    figure(report).savefig(path, format="png")
    return path


def write_all(report: dict[str, Any], folder: Path) -> dict[str, Path]:
    """``report.json`` and ``report.png`` in ``folder`` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "json": write_json(report, folder / "report.json"),
        "png": write_png(report, folder / "report.png"),
    }
