"""One writer per repository: ``.hdrfix/lock``, held while a run plans and writes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from hdrfix.core.errors import HdrfixError
from hdrfix.core.journal import LOCK

WAIT_SECONDS = 10.0


@contextlib.contextmanager
def repo_lock(root: Path, wait: float | None = None) -> Iterator[None]:
    from filelock import FileLock, Timeout

    wait = WAIT_SECONDS if wait is None else wait
    path = root / LOCK
    try:
        path.parent.mkdir(exist_ok=True)
    except OSError as exc:
        raise HdrfixError(
            f"cannot create the lock folder ({exc.strerror})",
            LOCK,
            hint="make the repository writable; nothing was changed",
        ) from None
    if path.exists() and not path.is_file():
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
        yield
    finally:
        lock.release()
