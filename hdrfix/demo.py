"""``make demo``: phase1 on a copy of the fixture framework, as a user would run it.

The copy is left in place (a fresh ``hdrfix-demo-*`` folder under the temp directory, printed at
the start and the end) so that its diff, ``.hdrfix/journal.json`` and ``hdrfix revert`` can be
tried on it afterwards.
"""

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
    # mkdtemp, not TemporaryDirectory: the copy must still be there when the demo has ended.
    repo = copy_framework(Path(tempfile.mkdtemp(prefix="hdrfix-demo-")) / "framework")
    print(f"A copy of the fixture framework is at {repo}")
    _run(["list"], repo)
    _run(["apply", "phase1", "--dry-run"], repo)
    before = _run(["apply", "phase1", "--check"], repo)
    print(f"(exit code {before}: phase1 is pending)")
    _run(["apply", "phase1"], repo)
    after = _run(["apply", "phase1", "--check"], repo)
    print(f"(exit code {after}: phase1 is applied)")
    _run(["status"], repo)
    print(f"\nThe copy, with phase1 applied, stays at {repo}")
    print(f"  try: cd {shlex.quote(str(repo))} && {shlex.quote(sys.executable)} -m hdrfix revert")
    print(f"  remove it: rm -rf {shlex.quote(str(repo.parent))}")
    return 0 if (before, after) == (1, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
