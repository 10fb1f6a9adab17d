"""What a dry-run loads (issue 20, item 2): its fixed cost counts against every repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from hdrfix.cli import main
try:
    main({args!r}, standalone_mode=False)
except SystemExit:
    pass
print(sorted(m for m in sys.modules if m.startswith("hdrfix.core.") or m == "hashlib"))
"""


def loaded_by(*args: str) -> list[str]:
    code = PROBE.format(args=list(args))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])


def test_a_dry_run_where_hdrfix_never_wrote_loads_no_commit_machinery(framework: Path) -> None:
    """Whether a commit was interrupted is told by ``.hdrfix/`` being absent; the code that
    finishes or undoes one (commit, journal) is loaded only when the folder is there."""
    loaded = loaded_by("apply", "phase1", "--dry-run", "--repo", str(framework))
    assert "hdrfix.core.engine" in loaded  # it did plan
    assert "hdrfix.core.commit" not in loaded and "hdrfix.core.journal" not in loaded
    assert "hashlib" not in loaded  # nothing is hashed: OpenSSL's start-up is not paid
    (framework / ".hdrfix").mkdir()
    assert "hdrfix.core.commit" in loaded_by(
        "apply", "phase1", "--dry-run", "--repo", str(framework)
    )
