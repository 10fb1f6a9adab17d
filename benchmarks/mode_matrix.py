"""The fixture's mode matrix: every phase combination x every normalization mode, run for real.

Run: .venv/bin/python benchmarks/mode_matrix.py [--repo fixtures/variants/field_helper_tuple]

For each combination the fixture (or a field variant) is copied and patched through the engine
``hdrfix apply`` uses; its trainer then runs 2 training steps with its own optimiser and a
validation step in each mode. In ``log`` mode the network's output layer is blown up (weights
x1e4, bias 50) so that the residual saturates: the table shows the largest |delta_log| and the
largest output the steps produced there. Prints a markdown table; tests/test_modes.py asserts
the same things.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORK = ROOT / "fixtures" / "framework"
COMBOS = ("", "phase1", "phase1 phase2", "phase1 phase3", "bound", "phase1 phase2 phase3 bound")
CONTROL = "control: the old placement"  # the clamp after the whole first dispatch chain
TRAINER = "train/patch_training_framework.py"
MODES = ("log", "global", "per_patch", "none")


def patched_copy(src: Path, dest: Path, phases: list[str]) -> Path:
    from hdrfix.core.engine import commit_run, plan_run
    from hdrfix.core.plugin import discover
    from hdrfix.core.repo import Repo
    from hdrfix.kit.targets import site_files

    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    if not (dest / "src").exists():
        shutil.copytree(FRAMEWORK / "src", dest / "src")
    if phases == [CONTROL]:
        misplace_clamp(dest / TRAINER)
    elif phases:
        repo = Repo(dest)
        include = site_files(repo, {}).others  # the export path too, as phase2 requires
        run = plan_run(Repo(dest), phases, discover(), {"include": include})
        commit_run(dest, run, "apply " + " ".join(phases))
    return dest


def misplace_clamp(path: Path) -> None:
    """What the first round of hdrfix did on the field: the clamp after the whole first
    ``if self.norm_type == ...`` chain of training_step, where delta_log exists in one arm."""
    import ast

    text = path.read_text()
    tree = ast.parse(text)
    step = next(n for n in ast.walk(tree) if getattr(n, "name", "") == "training_step")
    chain = next(
        n for n in ast.walk(step) if isinstance(n, ast.If) and "norm_type" in ast.unparse(n.test)
    )
    lines = text.splitlines(keepends=True)
    indent = " " * chain.col_offset
    clamp = f"{indent}delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)\n"
    lines.insert(chain.end_lineno or chain.lineno, clamp)
    path.write_text("".join(lines))


@contextlib.contextmanager
def trainer_module(repo: Path):
    """The patched trainer, imported with a stand-in for OpenCV (the network package's
    ``__init__`` imports it, as the field's does)."""
    sys.modules.setdefault("cv2", types.ModuleType("cv2"))
    sys.path.insert(0, str(repo))
    try:
        yield importlib.import_module("train.patch_training_framework")
    finally:
        sys.path.remove(str(repo))
        for name in [n for n in sys.modules if n.split(".")[0] in ("train", "src", "tools")]:
            del sys.modules[name]


def run_mode(module, config: dict, mode: str) -> str:
    import torch

    from hdrfix.validate.fixture import build_trainer
    from hdrfix.validate.synth import make_field_batch

    config = copy.deepcopy(config)
    config["normalization"]["type"] = mode
    torch.manual_seed(0)
    model = build_trainer(module, config)
    if mode == "log":
        with torch.no_grad():
            model.patch_network.output_conv.weight.mul_(1e4)
            model.patch_network.output_conv.bias.fill_(50.0)
    optimiser = model.configure_optimizers()
    start = time.perf_counter()
    delta, peak = 0.0, 0.0
    try:
        for step in range(2):
            loss = model.training_step(make_field_batch(2, 32, 32, seed=step), step)["loss"]
            if not torch.isfinite(loss):
                return f"loss {float(loss)}"
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            branch = getattr(model, "last_log_branch", {})
            if mode == "log" and branch:
                delta = max(delta, float(branch["delta_log"].abs().max()))
                peak = max(peak, float(branch["prediction"].max()))
        with torch.no_grad():
            model.validation_step(make_field_batch(2, 32, 32, seed=99), 0)
    except Exception as exc:  # the point of the matrix: show what breaks, and where
        return f"{type(exc).__name__}: {exc}"[:60]
    ms = (time.perf_counter() - start) * 1000
    if mode != "log":
        return f"trains ({ms:.0f} ms)"
    return f"trains ({ms:.0f} ms), max abs delta {delta:.2f}, max out {peak:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=FRAMEWORK)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"repo: {args.repo.relative_to(ROOT) if args.repo.is_relative_to(ROOT) else args.repo}")
    print("| phases | " + " | ".join(MODES) + " |")
    print("|---" * (len(MODES) + 1) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, combo in enumerate((*COMBOS, CONTROL)):
            phases = [CONTROL] if combo == CONTROL else combo.split()
            repo = patched_copy(args.repo, Path(tmp) / f"c{i}", phases)
            with trainer_module(repo) as module:
                config = module.load_config(repo / "configs" / "colleague_training_config.yaml")
                cells = [run_mode(module, config, mode) for mode in MODES]
            print(f"| {combo or 'untouched'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
