"""One writer per repository: ``.hdrfix/lock``, held while a run plans and writes.

The locking itself is ``filelock``'s; what is written here is hdrfix's own rule for state in an
untrusted tree (a link or a folder where the lock belongs is refused, never followed) and the
``.gitignore`` that keeps the lock and the intent out of commits: no lock library knows either.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from hdrfix.core.journal import FOLDER, LOCK
from hdrfix.core.safepath import state_dir, writable
from hdrfix.lang.errors import HdrfixError

IGNORE = f"{FOLDER}/.gitignore"
# The lock and the intent belong to one checkout: a commit that carried them would hand the
# next clone a record to act on. The journal stays committable; this file ignores itself, so
# that a clone's first run writes its own.
_IGNORED = "# written by hdrfix: local state, never committed\n/.gitignore\n/lock\n/intent.json*\n"

WAIT_SECONDS = 10.0


@contextlib.contextmanager
def repo_lock(root: Path, wait: float | None = None) -> Iterator[None]:
    from filelock import FileLock, Timeout

    wait = WAIT_SECONDS if wait is None else wait
    path = root / LOCK
    try:
        state_dir(root).mkdir(exist_ok=True)
    except OSError as exc:
        raise HdrfixError(
            f"cannot create the lock folder ({exc.strerror})",
            LOCK,
            hint="make the repository writable; nothing was changed",
        ) from None
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise HdrfixError(
            "is not a file, so it cannot serve as the lock",
            LOCK,
            hint="remove it (no hdrfix run keeps anything there); nothing was changed",
        )
    lock = FileLock(str(path), timeout=wait)
    try:
        lock.acquire()
    except Timeout:
        raise HdrfixError(
            f"another hdrfix run has held the lock for {wait:.0f} s",
            LOCK,
            hint="wait for it to finish and run again; nothing was changed",
        ) from None
    except OSError as exc:
        raise HdrfixError(
            f"cannot take the lock ({exc.strerror or exc})",
            LOCK,
            hint="make .hdrfix/ writable; nothing was changed",
        ) from None
    try:
        # only a convenience: never a reason to stop (a link or a folder in its place is left
        # alone, as the gate refuses to write there)
        with contextlib.suppress(OSError, HdrfixError):
            _ignore_local_state(root)
        yield
    finally:
        lock.release()


def _ignore_local_state(root: Path) -> None:
    """Write ``.hdrfix/.gitignore`` unless it is there (a user's own is left as it is)."""
    path = writable(root, IGNORE, own=True)
    if os.path.lexists(path):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(_IGNORED)
