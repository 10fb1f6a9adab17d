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
    Row("train_clamped_share", "residuals at clamp 8, train", _share, relative=False),
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
    """``-99.5%``, ``+470%``; ``=`` for no change; ``new`` when base was 0 and this is not."""
    if not _finite(base) or not _finite(value):
        return ""
    if value == base:
        return "="
    if base == 0:
        return "new"
    change = 100.0 * (value - base) / abs(base)
    if abs(change) < 0.05:
        return "+-0.0%"
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
        f"{s['eval_batches']} held-out batches; {dev['type']} ({dev['name']}, "
        f"{dev['threads']} threads); (+x%) is the change against base{base}"
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
    "training loss",
    "overflow px per training step",
    "delta_log histogram (held-out)",
    "frame vs hole error (held-out)",
)


def figure(report: dict[str, Any]) -> Any:
    """The 2x2 matplotlib figure: loss curves, overflow per step, delta_log histograms, errors."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    variants = report["variants"]
    colours = [f"C{i % 10}" for i in range(len(variants))]
    fig = Figure(figsize=(12, 8.5), dpi=100, layout="constrained")
    (ax_loss, ax_over), (ax_hist, ax_err) = fig.subplots(2, 2)

    for v, c in zip(variants, colours, strict=False):
        losses = [x if _finite(x) else math.nan for x in v["curves"]["loss"]]
        ax_loss.plot(range(1, len(losses) + 1), losses, color=c, label=v["name"], lw=1.2)
    ax_loss.set(title=PANELS[0], xlabel="step", ylabel="loss")
    if any(_finite(x) and x > 0 for v in variants for x in v["curves"]["loss"]):
        ax_loss.set_yscale("log")
    ax_loss.legend(fontsize="small")

    for v, c in zip(variants, colours, strict=False):
        over = v["curves"]["overflow_px"]
        ax_over.plot(
            range(1, len(over) + 1), over, color=c, label=v["name"], lw=1.2, drawstyle="steps-mid"
        )
    ax_over.set(title=PANELS[1], xlabel="step", ylabel="elements > 65504 or not finite")
    ax_over.set_yscale("symlog", linthresh=1)
    ax_over.set_ylim(bottom=0)
    ax_over.legend(fontsize="small")

    for v, c in zip(variants, colours, strict=False):
        hist = v["delta_log_hist"]
        lo, hi = hist["range"]
        n = hist["bins"]
        edges = [lo + (hi - lo) * i / n for i in range(n + 1)]
        ax_hist.stairs(hist["counts"], edges, color=c, label=v["name"], lw=1.2)
    ax_hist.axvline(report["settings"]["clamp_bound"], color="grey", ls=":", lw=0.8)
    ax_hist.axvline(-report["settings"]["clamp_bound"], color="grey", ls=":", lw=0.8)
    ax_hist.set(
        title=PANELS[2], xlabel="delta_log (values beyond +-20 in the end bins)", ylabel="elements"
    )
    ax_hist.set_yscale("symlog", linthresh=1)
    ax_hist.legend(fontsize="small")

    groups = ("eval_frame_error", "eval_hole_error")
    width = 0.8 / max(1, len(variants))
    for i, (v, c) in enumerate(zip(variants, colours, strict=False)):
        xs = [g + (i - (len(variants) - 1) / 2) * width for g in range(len(groups))]
        ys = [v["metrics"][k] if _finite(v["metrics"][k]) else 0.0 for k in groups]
        ax_err.bar(xs, ys, width=width, color=c, label=v["name"])
    ax_err.set_xticks(range(len(groups)), ["frame error", "hole error"])
    ax_err.set(title=PANELS[3], ylabel="mu-law L1 (mu=300)")
    ax_err.legend(fontsize="small")

    s = report["settings"]
    fig.suptitle(
        f"hdrfix validate: {s['steps']} steps, batch {s['batch']} of "
        f"{s['height']}x{s['width']}, {report['device']['type']}",
        fontsize="medium",
    )
    return fig


def write_png(report: dict[str, Any], path: Path) -> dict[str, Any]:
    """Write ``report.png``; returns what was drawn: ``{"path", "panels": [titles]}``."""
    fig = figure(report)
    fig.savefig(path, format="png")
    return {"path": path, "panels": [ax.get_title() for ax in fig.axes]}


def write_all(report: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``report.json`` and ``report.png`` in ``folder`` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = write_json(report, folder / "report.json")
    png = write_png(report, folder / "report.png")
    return {"json": json_path, "png": png["path"], "panels": png["panels"]}
