"""The verdicts (a mode breaks when it trains untouched and not patched), the table, the JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hdrfix.trial.run import Cell, Result

TRAINS, BREAKS, FAILS, FAILS_UNTOUCHED = "trains", "breaks", "fails", "fails untouched"
NOT_SET = "mode not set"
REFUSED = "refused"


def verdict(cell: Cell, base: dict[str, Cell]) -> str:
    """base's own failure is the trainer's, not a phase's: shown, never blamed on a phase.
    A mode the trainer did not take trained nothing: it is claimed for no variant."""
    if cell.unset is not None:
        return f"{NOT_SET}: {cell.unset}"
    if cell.outcome.trains:
        return TRAINS
    untouched = base.get(cell.mode)
    if cell.variant == "base" or untouched is None:
        return FAILS
    return BREAKS if untouched.outcome.trains else FAILS_UNTOUCHED


def verdicts(result: Result) -> list[tuple[Cell, str]]:
    base = {c.mode: c for c in result.cells if c.variant == "base"}
    return [(c, verdict(c, base)) for c in result.cells]


def breaks(result: Result) -> int:
    return sum(1 for _, v in verdicts(result) if v == BREAKS)


def _num(value: float | None, fmt: str = ".3g") -> str:
    return "-" if value is None else format(value, fmt)


def _row(cell: Cell, what: str) -> list[str]:
    o, p = cell.outcome, cell.outcome.probe
    step_ms = 1000 * sum(p.step_s) / len(p.step_s) if p.step_s else None
    return [
        cell.variant,
        cell.mode,
        what,
        str(o.steps),
        _num(p.losses[-1] if p.losses else None, ".4f"),
        _num(p.max_exp),
        "-" if p.overflow is None else str(p.overflow),
        _num(p.max_delta_log, ".2f"),
        _num(step_ms, ".0f"),
    ]


HEADER = ["variant", "mode", "result", "steps", "loss", "max exp", ">65504", "|dlog|", "ms/step"]
#: Under DDP: ranks finished, parameters unused in a step, parameters differing across ranks.
DDP_HEADER = ["ranks", "unused", "differ"]


def _ddp_row(cell: Cell) -> list[str]:
    ranks = cell.outcome.ranks
    if ranks is None:
        return ["-", "-", "-"]
    return [
        f"{len(ranks.finished)}/{ranks.devices}",
        str(len(ranks.unused)),
        str(len(ranks.differ)),
    ]


def table(result: Result) -> list[str]:
    parallel = result.settings.devices is not None
    header = HEADER + DDP_HEADER if parallel else HEADER
    rows = [header] + [_row(c, v) + (_ddp_row(c) if parallel else []) for c, v in verdicts(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    # a refused variant trained nothing: one row, its phase's line in full
    lines += [
        f"{name:<{widths[0]}}  {'-':<{widths[1]}}  {REFUSED}: {why}"
        for name, why in result.refused.items()
    ]
    for cell, what in verdicts(result):
        ranks = cell.outcome.ranks
        for problem in ranks.problems() if ranks is not None else ():
            lines.append(f"{cell.variant} {cell.mode}: {what}: under DDP, {problem}")
        if cell.outcome.error:
            e = cell.outcome.error
            lines.append(
                f"{cell.variant} {cell.mode}: {what}: {e['type']}: {e['message']} at {e['at']}"
            )
    return lines


def footer(result: Result) -> list[str]:
    s = result.settings
    runners = sorted({c.outcome.runner for c in result.cells if c.unset is None}) or ["none"]
    notes = sorted({n for c in result.cells for n in c.outcome.notes})
    lines = [
        f"trainer {result.trainer.class_name} ({result.trainer.rel}), config "
        f"{result.trainer.config_rel}; {s.steps} steps of {s.batch}x{s.height}x{s.width} per "
        f"cell on {s.device}, run by {' and '.join(runners)}",
    ]
    if s.devices is not None:
        backend = "nccl" if s.device == "cuda" else "gloo"
        lines.append(
            f"under Lightning's DDP: {s.devices} rank(s) started by fork, {backend}, "
            f"find_unused_parameters={s.find_unused}; each rank {s.steps} steps of its own "
            "batches"
        )
    if result.passed:
        given = "; ".join(f"{k}={v}" for k, v in result.passed.items())
        lines.append(f"constructor: {given}")
    lines.append(_modes_line(result))
    if result.stubbed:
        lines.append(f"stubbed (empty modules): {', '.join(result.stubbed)}")
    if s.log_path is not None:
        lines.append(f"the framework's own output: {s.log_path} ({result.framework_lines} lines)")
    lines += [f"note: {n}" for n in notes]
    count = breaks(result)
    lines.append(
        f"{count} cell(s) break: patched, a mode that trains untouched no longer trains"
        if count
        else "no variant breaks a mode that trains untouched"
    )
    return lines


def _modes_line(result: Result) -> str:
    src = result.source
    key = ".".join(result.mode_key or ()) or "-"
    if src.mode_attr is None:
        where = f"modes set at {key}; no self.<attr> == 'log' dispatch found to confirm them"
    else:
        where = f"modes set at {key}, confirmed on self.{src.mode_attr} after construction"
    if "log" not in result.settings.modes:
        return where
    if result.blown_up:
        return f"{where}; log mode: {result.blown_up} output x 1e4 + 50 (the residual saturates)"
    return f"{where}; log mode: no network found on the trainer to blow up (output as built)"


def as_json(result: Result) -> dict[str, Any]:
    s = result.settings
    cells = []
    for cell, what in verdicts(result):
        o, p = cell.outcome, cell.outcome.probe
        cells.append(
            {
                "variant": cell.variant,
                "mode": cell.mode,
                "result": what,
                "trains": o.trains,
                "runner": o.runner,
                "steps": o.steps,
                "losses": [_finite(v) for v in p.losses],
                "max_exp": _finite(p.max_exp),
                "overflow": p.overflow,
                "max_abs_delta_log": p.max_delta_log,
                "step_s": p.step_s,
                "seconds": cell.seconds,
                "error": o.error,
                "notes": o.notes,
                "ranks": o.ranks.as_json() if o.ranks is not None else None,
            }
        )
    return {
        "repo": str(s.repo),
        "trainer": {
            "file": result.trainer.rel,
            "class": result.trainer.class_name,
            "config": result.trainer.config_rel,
        },
        "settings": {
            "steps": s.steps,
            "batch": s.batch,
            "size": [s.height, s.width],
            "device": s.device,
            "seed": s.seed,
            "modes": s.modes,
            "variants": [v.name for v in s.variants],
            "devices": s.devices,
            "strategy": "ddp" if s.devices is not None else None,
            "find_unused_parameters": s.find_unused,
        },
        "changed": result.changed,
        "refused": result.refused,
        "constructor": result.passed,
        "mode_key": list(result.mode_key) if result.mode_key else None,
        "mode_attribute": result.source.mode_attr,
        "blown_up": result.blown_up,
        "framework_log": str(s.log_path) if s.log_path else None,
        "stubbed": result.stubbed,
        "cells": cells,
        "breaks": breaks(result),
    }


def _finite(value: float | None) -> float | str | None:
    """Strict JSON has no inf or nan: those become the strings "inf", "-inf", "nan"."""
    return value if value is None or math.isfinite(value) else str(value)


def write(result: Result, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.json"
    path.write_text(json.dumps(as_json(result), indent=2, default=str) + "\n", encoding="utf-8")
    return path
