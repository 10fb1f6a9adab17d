"""What a commit checks before it writes anything (:mod:`hdrfix.core.commit`): each target
is still the file the plan read, a regular writable file inside the repository, and no commit
record git tracks is acted on. A refusal here leaves every file as it was."""

from __future__ import annotations

import os
from pathlib import Path

from hdrfix.core.changes import FileChange
from hdrfix.core.journal import JOURNAL
from hdrfix.core.safepath import refuse_hard_link, writable
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.sourcefile import sha256

OWN = frozenset({JOURNAL})  # hdrfix's own state a commit writes beside the files


def refuse_tracked(root: Path, rel: str) -> None:
    """A commit record (or its temporary file) that git tracks came with a commit, not from a
    run of hdrfix here: it is neither acted on nor deleted."""
    from hdrfix.core.gitstate import tracked

    if os.path.lexists(root / rel) and tracked(root, rel):
        raise HdrfixError(
            "is tracked by git; a commit record is local state that no commit carries, "
            "so hdrfix does not act on it",
            rel,
            hint=f"git rm --cached {rel}, check the files it lists with git, then "
            "delete it (nothing was changed)",
        )


def preflight(root: Path, changes: list[FileChange]) -> None:
    """Every target is as the plan read it, writable, and a regular file inside the repo."""
    for change in changes:
        target = root / change.rel
        if target.is_symlink():
            raise HdrfixError(
                "is a symbolic link; hdrfix edits the file a link points to, not the link",
                change.rel,
                hint="nothing was written; run hdrfix again",
            )
        writable(root, change.rel, own=change.rel in OWN)
        refuse_hard_link(target, change.rel)
        if not change.source.exists:
            if target.exists():
                raise HdrfixError(
                    "appeared on disk while hdrfix was planning",
                    change.rel,
                    hint="nothing was written; run hdrfix again",
                )
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HdrfixError(
                    f"cannot create the folder ({exc.strerror})",
                    change.rel,
                    hint="nothing was changed",
                ) from None
            continue
        try:
            current = target.read_bytes()
        except OSError as exc:
            raise HdrfixError(
                f"cannot read the file ({exc.strerror})", change.rel, hint="nothing was changed"
            ) from None
        if sha256(current) != change.source.digest:
            raise HdrfixError(
                "changed on disk while hdrfix was planning",
                change.rel,
                hint="nothing was written; run hdrfix again",
            )
        if not os.access(target, os.W_OK) or not os.access(target.parent, os.W_OK):
            raise HdrfixError(
                "is read-only",
                change.rel,
                hint="make it and its folder writable; nothing was changed",
            )


def where(root: Path, exc: OSError) -> str | None:
    """The file an OS error names, relative to the repository where it lies inside it."""
    name = exc.filename
    if not name:
        return None
    try:
        return os.path.relpath(name, root)
    except ValueError:
        return str(name)
