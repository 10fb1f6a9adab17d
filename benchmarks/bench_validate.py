"""Step time of each ``hdrfix validate`` variant and each phase's overhead over base.

    .venv/bin/python benchmarks/bench_validate.py [--runs 5] [--rounds 30] [--size 64x64]

Every variant is built exactly as ``hdrfix validate`` builds it (a copy of the fixture framework
patched by the engine, the same initial weights, the trainer's own optimiser). A *run* times
``--rounds`` training steps of every variant, the variants taking turns step by step in a
rotating order (one untimed warm-up round first), so that a busy machine slows all alike; the
step time of a variant is the median over runs of its per-run median. Prints a markdown table.

phase1's clamp and bound's output bound are one elementwise op each on tensors the step already
holds: each should cost under 2% of a training step. phase1 also changes the config (huber log
supervision instead of l1), which costs a little of its own; the row "phase1 clamp only" is
phase1's patched trainer run with base's config values, so it measures the clamp alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

TARGET = 0.02  # clamp and bound: at most 2% slower than base
CLAMP_ONLY = "phase1 clamp only"
CHEAP = (
    (CLAMP_ONLY, "phase1's clamp (phase1's code, base's config values)"),
    ("bound", "bound (Ln_hat clamp)"),
)
#: The trainer attributes phase1's config change sets (the trainer's names are short, log_sup_*,
#: for the config's log_supervision_* keys); copied from base for CLAMP_ONLY.
BASE_SETTINGS = (
    "log_delta_abs_max",
    "log_delta_alpha",
    "log_sup_weight",
    "log_sup_type",
)


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants", help="as for hdrfix validate (default: validate's default variants)"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument(
        "--rounds", type=int, default=30, help="timed steps per variant per run (default 30)"
    )
    parser.add_argument("--size", default="64x64", help="frame size HxW (default 64x64)")
    parser.add_argument("--batch", type=int, default=4, help="frames per batch (default 4)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default 1, as validate)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    import torch

    from hdrfix.core.plugin import discover
    from hdrfix.lang.errors import HdrfixError
    from hdrfix.validate import run as engine
    from hdrfix.validate import variants as variant_specs
    from hdrfix.validate.training import interleaved_step_ms

    phases = discover()
    try:
        if args.variants:
            variants = variant_specs.parse_variants(args.variants, phases)
        else:
            variants, notes = variant_specs.default_variants(phases)
            for note in notes:
                print(f"note: {note}", file=sys.stderr)
        height, width = engine.parse_size(args.size)
        settings = engine.Settings(
            variants=variants,
            steps=args.rounds,
            batch=args.batch,
            height=height,
            width=width,
            device=args.device,
            seed=args.seed,
            eval_batches=1,
            torch_threads=args.threads or 1,
        )
        started = time.perf_counter()
        runs: list[list[float]] = []
        names = [v.name for v in variants]
        with engine.session(settings, phases) as ses:
            trained = [(b.model, b.optimiser) for b in ses.built]
            clamp_only = _clamp_only(ses, names)
            if clamp_only is not None:
                trained.append(clamp_only)
                names.append(CLAMP_ONLY)
            threads = torch.get_num_threads()
            device = engine.device_name(args.device)
            for _ in range(args.runs):
                runs.append(interleaved_step_ms(trained, ses.batches, args.rounds, args.device))
    except HdrfixError as exc:
        print(f"bench_validate: error: {exc}", file=sys.stderr)
        return 2

    per_variant = list(zip(*runs, strict=False))
    median = [statistics.median(ms) for ms in per_variant]
    base = median[names.index("base")] if "base" in names else None

    print(
        f"# hdrfix validate step time: {args.device} ({device}), {threads} threads, "
        f"torch {torch.__version__}"
    )
    print()
    print(
        f"batch {args.batch} of {height}x{width}; median over {args.runs} runs of the median "
        f"of {args.rounds} interleaved training steps ({time.perf_counter() - started:.0f} s)"
    )
    print()
    print("| variant | step ms | run medians, min - max | overhead vs base |")
    print("|---|---:|---:|---:|")
    for name, ms, spread in zip(names, median, per_variant, strict=False):
        overhead = "" if base is None or name == "base" else f"{100 * (ms - base) / base:+.1f}%"
        print(f"| {name} | {ms:.2f} | {min(spread):.2f} - {max(spread):.2f} | {overhead} |")
    if base is not None:
        print()
        for name, what in CHEAP:
            if name in names:
                rel = (median[names.index(name)] - base) / base
                word = "ok" if rel < TARGET else "OVER TARGET"
                print(
                    f"- {what}: {100 * rel:+.1f}% over base (target < {100 * TARGET:.0f}%): {word}"
                )
        if "phase1" in names:
            rel = (median[names.index("phase1")] - base) / base
            print(
                f"- phase1 as a whole (clamp, and the config's huber log supervision x2, cap "
                f"6): {100 * rel:+.1f}%"
            )
    return 0


def _clamp_only(ses, names: list[str]):
    """phase1's code with base's settings: the clamp's own cost, without phase1's config change
    (huber instead of l1 log supervision costs a few elementwise ops of its own)."""
    import copy

    if "base" not in names or "phase1" not in names:
        return None
    base = ses.built[names.index("base")].model
    model = copy.deepcopy(ses.built[names.index("phase1")].model)
    for attr in BASE_SETTINGS:
        setattr(model, attr, getattr(base, attr))
    return model, model.configure_optimizers()


if __name__ == "__main__":
    sys.exit(main())
