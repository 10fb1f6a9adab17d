"""``make demo``: phase1 on a copy of the fixture framework, as a user would run it."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from hdrfix.validate.fixture import copy_framework


def _run(args: list[str], cwd: Path) -> int:
    print(f"\n$ hdrfix {shlex.join(args)}", flush=True)
    return subprocess.run([sys.executable, "-m", "hdrfix", *args], cwd=cwd).returncode


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="hdrfix-demo-") as tmp:
        repo = copy_framework(Path(tmp) / "framework")
        print(f"A copy of the fixture framework is at {repo}")
        _run(["list"], repo)
        _run(["apply", "phase1", "--dry-run"], repo)
        before = _run(["apply", "phase1", "--check"], repo)
        print(f"(exit code {before}: phase1 is pending)")
        _run(["apply", "phase1"], repo)
        after = _run(["apply", "phase1", "--check"], repo)
        print(f"(exit code {after}: phase1 is applied)")
        _run(["status"], repo)
        return 0 if (before, after) == (1, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
