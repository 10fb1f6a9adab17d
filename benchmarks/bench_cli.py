"""CLI speed and memory: `--help`, dry-runs on a large framework and on a 5,000-file repository.

Run: .venv/bin/python benchmarks/bench_cli.py [--runs 5]
Prints a markdown table; each figure is the median of --runs runs (wall time of a fresh process).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORK = ROOT / "fixtures" / "framework"
TRAINER = "train/patch_training_framework.py"
INFERENCE = "src/npu/networks/patch_inpainting.py"
PY = sys.executable


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``cmd`` in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def median(cmd: list[str], runs: int, cwd: Path | None = None) -> tuple[float, float]:
    results = [timed(cmd, cwd) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def padded_trainer(lines: int) -> str:
    """The fixture trainer padded with realistic methods to about ``lines`` lines."""
    text = (FRAMEWORK / TRAINER).read_text()
    methods = []
    i = 0
    while text.count("\n") + sum(m.count("\n") for m in methods) < lines:
        methods.append(
            f"    def _metric_{i}(self, prediction, target, mask=None):\n"
            f'        """Masked metric #{i}, logged every {i % 7 + 1} steps."""\n'
            f"        diff = (prediction - target).abs()\n"
            f"        if mask is not None:\n"
            f"            diff = diff * mask\n"
            f"            return diff.sum() / mask.sum().clamp(min=1.0)\n"
            f"        scale = {i % 5 + 1}.0 / (1.0 + self.global_step)\n"
            f"        return torch.log1p(diff.mean() * scale)\n\n"
        )
        i += 1
    marker = "    def training_step"
    return text.replace(marker, "".join(methods) + marker, 1)


def big_repo(dest: Path, files: int) -> None:
    shutil.copytree(FRAMEWORK, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for i in range(files):
        folder = dest / "lib" / f"pkg{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i}.py").write_text(
            f'"""Utility module {i}."""\n\nimport math\n\n\n'
            f"def area_{i}(r):\n    return math.pi * r * r\n\n\n"
            f"class Shape{i}:\n    def __init__(self, r):\n        self.r = r\n\n"
            f"    def scaled(self, k):\n        return Shape{i}(self.r * k)\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=5000)
    args = parser.parse_args()
    hdrfix = [PY, "-m", "hdrfix"]
    rows = []
    t, m = median([*hdrfix, "--help"], args.runs)
    rows.append(("`hdrfix --help`", t, m, "goal ≤ 0.15 s"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        fixture = tmp_path / "fixture"
        shutil.copytree(FRAMEWORK, fixture, ignore=shutil.ignore_patterns("__pycache__"))
        # the export module is patched too, as a user would before phase2 (it refuses otherwise)
        dry = [*hdrfix, "apply", "phase1", "phase2", "--dry-run", "--include", INFERENCE]
        t, m = median(dry, args.runs, fixture)
        rows.append(("dry-run phase1 phase2, fixture", t, m, ""))

        large = tmp_path / "large"
        shutil.copytree(FRAMEWORK, large, ignore=shutil.ignore_patterns("__pycache__"))
        (large / TRAINER).write_text(padded_trainer(3000))
        n_lines = (large / TRAINER).read_text().count("\n")
        t_dry, m_dry = median(dry, args.runs, large)
        floor_cmd = [
            PY,
            "-c",
            "import libcst, sys; libcst.parse_module(open(sys.argv[1]).read()).code",
            str(large / TRAINER),
        ]
        t_floor, _ = median(floor_cmd, args.runs)
        rows.append(
            (
                f"dry-run phase1 phase2, {n_lines}-line trainer",
                t_dry,
                m_dry,
                f"{t_dry / t_floor:.2f} × libcst parse+print floor ({t_floor:.2f} s); goal ≤ 0.6",
            )
        )

        repo = tmp_path / "repo"
        big_repo(repo, args.files)
        t_big, m_big = median(dry, max(1, args.runs // 2), repo)
        codemod = [
            PY,
            "-m",
            "libcst.tool",
            "codemod",
            "noop.NOOPCommand",
            "--no-format",
            "--hide-progress",
            "-j",
            "2",
            ".",
        ]
        t_lib, _ = timed(codemod, repo)
        rows.append(
            (
                f"dry-run phase1 phase2, {args.files} files + fixture",
                t_big,
                m_big,
                f"libcst codemod no-op {t_lib:.1f} s: {t_lib / t_big:.0f}× faster; "
                "goal ≤ 2 s, ≥ 20×, ≤ 200 MB",
            )
        )
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, median of {args.runs} runs\n")
    print("| what | wall s | peak MB | notes |\n|---|---|---|---|")
    for what, t, m, note in rows:
        print(f"| {what} | {t:.3f} | {m:.0f} | {note} |")


if __name__ == "__main__":
    main()
