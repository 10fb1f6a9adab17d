"""How long an edit can still be lost: per file, from the start of the last read-and-hash of a
target to the end of its replace (docs/threat-model.md quotes the figures).

    .venv/bin/python benchmarks/write_window.py [FILES] [SIZE_BYTES]

Builds FILES YAML files of SIZE_BYTES in a temporary folder, applies a phase that appends a
line to each through hdrfix's one write path, and prints the window's median and maximum.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from hdrfix.cli import main
from hdrfix.core import commit

PHASE = """from hdrfix.core.plugin import Phase, PhasePlan


class Stamp(Phase):
    name = "stamp"
    summary = "append a line to every YAML file"

    def plan(self, repo, options):
        plan = PhasePlan(self.name)
        for rel in repo.files((".yaml",)):
            plan.todo(rel, None, "stamp")
            plan.text_edits[rel] = repo.text(rel) + "# stamped\\n"
        return plan
"""


def measure(files: int, size: int) -> list[float]:
    windows: list[float] = []
    started: dict[Path, float] = {}
    real_unchanged, real_replace = commit._Target.unchanged, commit.replace

    def unchanged(target: commit._Target) -> None:
        started[target.path] = time.perf_counter()
        real_unchanged(target)

    def replace(tmp: Path, target: Path) -> None:
        real_replace(tmp, target)
        if target in started:
            windows.append(time.perf_counter() - started.pop(target))

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder, "repo")
        body = "".join(f"key_{n:08d}: value\n" for n in range(max(1, size // 22)))
        for i in range(files):
            path = root / f"configs/run_{i:04d}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
        plugins = Path(folder, "plugins")
        plugins.mkdir()
        (plugins / "stamp.py").write_text(PHASE, encoding="utf-8")
        commit._Target.unchanged = unchanged  # type: ignore[method-assign]
        commit.replace = replace
        try:
            result = CliRunner().invoke(
                main, ["--plugins", str(plugins), "apply", "stamp", "--repo", str(root)]
            )
        finally:
            commit._Target.unchanged = real_unchanged  # type: ignore[method-assign]
            commit.replace = real_replace
        assert result.exit_code == 0, result.output
    return windows


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    got = measure(count, size)
    print(
        f"{len(got)} files of {size} bytes: window median {statistics.median(got) * 1e6:.0f} us, "
        f"max {max(got) * 1e6:.0f} us"
    )
