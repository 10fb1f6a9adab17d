"""What git says about the files a run is about to change."""

from __future__ import annotations

import subprocess
from pathlib import Path


def uncommitted(root: Path, rels: list[str]) -> list[str]:
    """Those of ``rels`` with edits git has not committed (staged or not); [] outside git.

    An apply onto them mixes the user's edits with hdrfix's in one working-tree diff."""
    if not rels:
        return []
    out = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=no", "--", *rels)
    if out is None:
        return []
    dirty = set()
    records = iter(out.decode("utf-8", "surrogateescape").split("\0"))
    for record in records:
        if len(record) > 3:
            dirty.add(record[3:])
            if "R" in record[:2] or "C" in record[:2]:
                next(records, None)  # a rename's or copy's source path follows
    return [rel for rel in rels if rel in dirty]


def tracked(root: Path, rel: str) -> bool:
    """Whether git tracks ``rel`` (False outside git, or when git cannot tell)."""
    return bool((_git(root, "ls-files", "-z", "--", rel) or b"").strip(b"\0"))


def _git(root: Path, *args: str) -> bytes | None:
    """git's output in ``root``; None outside git or when git fails."""
    if not (root / ".git").exists():
        return None
    try:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
