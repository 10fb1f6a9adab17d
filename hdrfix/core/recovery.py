"""What each command does about a commit that a killed run left half done.

``apply`` and ``revert`` (and ``recover``) finish or undo it first, under the lock; the
commands that promise not to write (``status``, ``apply --check``, ``--dry-run``) never do:
they stop with one line naming ``hdrfix recover``, since the repository is then neither as
before nor as after. The intent is untrusted (it may come with a clone or a pull request), so
its every file is checked first: see :meth:`hdrfix.core.commit._Intent.refuse_unwritable`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path

from hdrfix.core.safepath import state_dir
from hdrfix.lang.errors import HdrfixError


def recover_interrupted(root: Path, kinds: Callable[[list[str]], tuple[str, ...]]) -> str | None:
    """:func:`recover` under the lock, touching nothing when no commit was interrupted.
    ``kinds`` gives the suffixes the named phases write (all installed phases' for none)."""
    from hdrfix.core.commit import _INTENT_TMP, _Intent, recover, refuse_tracked
    from hdrfix.core.lock import repo_lock

    if not interrupted(root):
        return None
    refuse_tracked(root, _INTENT_TMP)  # before the lock: a refusal creates nothing
    intent = _Intent.load(root)
    allowed = kinds([] if intent is None else intent.action.split()[1:])
    if intent is not None:
        intent.refuse_unwritable(allowed)  # before the lock: a refusal creates nothing
        intent.refuse_unsealed()
    with repo_lock(root):
        return recover(root, allowed)


def interrupted(root: Path) -> bool:
    if not state_dir(root).exists():
        return False  # the usual case, told without loading the commit machinery
    from hdrfix.core.commit import _INTENT_TMP, INTENT

    return os.path.lexists(root / INTENT) or os.path.lexists(root / _INTENT_TMP)


def refuse_if_interrupted(root: Path, command: str) -> None:
    """For the commands that promise not to write: an interrupted commit is reported, never
    finished, and the run stops (exit 2: the files are neither before nor after)."""
    if not interrupted(root):
        return
    from hdrfix.core.commit import INTENT, _Intent

    intent = _Intent.load(root)
    what = "a commit of hdrfix" if intent is None else f"`hdrfix {intent.action}`"
    raise HdrfixError(
        f"{what} was interrupted and left this record; `{command}` writes nothing, so it "
        "neither finishes it nor reads a half-written repository",
        INTENT,
        hint=f"run `hdrfix recover --repo {shlex.quote(str(root))}` to finish or undo it",
    )
