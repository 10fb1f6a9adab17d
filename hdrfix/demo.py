"""``make demo``: phase1 on a copy of the fixture framework, as a user would run it.

List, dry-run, check, apply, status, revert: the main job, on a light install (no torch, see the
Makefile). The copy is left in place (a fresh ``hdrfix-demo-*`` folder under the temp
directory, printed at the start and the end), re-applied after the revert, so that its diff and
``.hdrfix/journal.json`` can be looked at afterwards.
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


def _git_tree(repo: Path) -> None:
    """Make the copy a git working tree with one commit, as a user's checkout is; without git
    the demo still runs (hdrfix is then pointed at the folder it runs in)."""
    name = ["-c", "user.name=hdrfix demo", "-c", "user.email=demo@example.invalid"]
    for args in (["init", "-q", "."], ["add", "-A"], [*name, "commit", "-qm", "base"]):
        try:
            subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            return


def main() -> int:
    # mkdtemp, not TemporaryDirectory: the copy must still be there when the demo has ended.
    repo = copy_framework(Path(tempfile.mkdtemp(prefix="hdrfix-demo-")) / "framework")
    print(f"A copy of the fixture framework is at {repo}")
    _git_tree(repo)
    _run(["list"], repo)
    _run(["apply", "phase1", "--dry-run"], repo)
    before = _run(["apply", "phase1", "--check"], repo)
    print(f"(exit code {before}: phase1 is pending)")
    _run(["apply", "phase1"], repo)
    after = _run(["apply", "phase1", "--check"], repo)
    print(f"(exit code {after}: phase1 is applied)")
    _run(["status"], repo)
    reverted = _run(["revert", "phase1"], repo)
    _run(["status"], repo)
    print(f"(exit code {reverted}: phase1 reverted, the files byte-identical to before)")
    _run(["--quiet", "apply", "phase1"], repo)
    print(f"\nThe copy, with phase1 applied again, stays at {repo}")
    print(f"  try: cd {shlex.quote(str(repo))} && {shlex.quote(sys.executable)} -m hdrfix revert")
    print(f"  remove it: rm -rf {shlex.quote(str(repo.parent))}")
    return 0 if (before, after, reverted) == (1, 0, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
