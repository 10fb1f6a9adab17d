"""The one write path: apply, revert and validate all change files through :func:`commit`.

A commit survives a crash at any instant, SIGKILL and power loss included:

1. under the repository lock, each file is checked against the bytes the plan was made from;
2. the *intent* (every file, its SHA-256 before and after, its pre-image, the temporary file
   that will carry its new bytes) is written to ``.hdrfix/intent.json`` and fsynced;
3. every new file is staged beside its target and fsynced;
4. only then are the targets replaced, one ``os.replace`` each, and the intent removed.

An exception at any point (Ctrl-C included) puts back what was replaced. A process that died
instead leaves the intent behind; the next apply, revert or recover calls
:func:`recover` first, which finishes the commit when every new file was staged and replacing
had begun (roll forward), and otherwise puts the pre-images back (roll back). Either way the
repository is byte-identical to before or to after, and no temporary file is left. (Commands
that promise not to write never recover: :mod:`hdrfix.core.recovery`.)

Every path is checked by :func:`hdrfix.core.safepath.writable` before it is written, and each
target is read and hashed again just before its replace (compare and swap): an edit saved
while hdrfix staged is kept, and the commit is rolled back.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import os
import posixpath
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hdrfix.core.changes import FileChange
from hdrfix.core.journal import FOLDER, dumps
from hdrfix.core.plugin import Phase
from hdrfix.core.precheck import OWN, preflight, refuse_tracked, where
from hdrfix.core.safepath import out_of_reach, writable
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.sourcefile import sha256

INTENT = f"{FOLDER}/intent.json"
_INTENT_TMP = f"{INTENT}.hdrfix-tmp"


def commit(root: Path, changes: list[FileChange], action: str) -> None:
    """Write every change or none, and leave a record from which a crash can be undone.

    ``action`` names the command in the recovery message (``"apply phase1"``).
    """
    from hdrfix.core.lock import repo_lock
    from hdrfix.core.seal import seal_key

    if not changes:
        return
    seal_key()  # a record that could not be sealed fails before anything is created
    preflight(root, changes)  # a stale plan fails here without even creating .hdrfix/
    with repo_lock(root):
        recover(root, Phase.writes)  # a run that died since this one opened the repo
        preflight(root, changes)  # again: another run may have written while we planned
        intent = _Intent.of(root, changes, action)
        try:
            intent.write()
        except OSError as exc:
            (root / _INTENT_TMP).unlink(missing_ok=True)
            raise HdrfixError(
                f"could not record the commit ({exc.strerror or exc})",
                INTENT,
                hint="nothing was changed",
            ) from None
        try:
            for target, change in zip(intent.targets, changes):
                _stage(target.tmp, change.new_bytes, target.path)
            for target in intent.targets:
                target.unchanged()  # compare and swap: an edit saved meanwhile is never lost
                replace(target.tmp, target.path)
            _sync_folders(t.path for t in intent.targets)
        except BaseException as exc:
            intent.roll_back()
            if isinstance(exc, OSError):
                raise HdrfixError(
                    f"could not write ({exc.strerror or exc})",
                    where(root, exc),
                    hint="every file was restored; nothing was changed",
                ) from None
            raise
        intent.remove()


def replace(tmp: Path, target: Path) -> None:
    """The one place a target is overwritten; tests inject faults and kills here."""
    os.replace(tmp, target)


def recover(root: Path, kinds: tuple[str, ...]) -> str | None:
    """Finish or undo a commit that a dead process left half done; the line to tell the user.

    Only an intent whose every file hdrfix may write (:mod:`hdrfix.core.safepath`) and whose
    phases write that kind of file (``kinds``: their suffixes) is acted on. The caller holds
    the lock (:func:`recover_interrupted` takes it).
    """
    refuse_tracked(root, _INTENT_TMP)  # deleting it would delete a file of the user's history
    writable(root, _INTENT_TMP, own=True).unlink(missing_ok=True)
    intent = _Intent.load(root)
    if intent is None:
        return None
    intent.refuse_unwritable(kinds)
    intent.refuse_unsealed()
    forward = intent.can_roll_forward()
    if forward:
        for target in intent.targets:
            if target.state() == "before":
                replace(target.tmp, target.path)
        _sync_folders(t.path for t in intent.targets)
        intent.remove()
        done = "rolled forward: every file is as it would have written it"
    else:
        intent.roll_back()
        done = "rolled back: every file is as it was before"
    return f"an interrupted `hdrfix {intent.action}` was found; {done}"


@dataclass
class _Target:
    rel: str
    path: Path
    tmp: Path
    before: str | None  # SHA-256; None: the file did not exist
    after: str
    pre_image: bytes | None

    def current(self) -> str | None:
        try:
            return sha256(self.path.read_bytes())
        except FileNotFoundError:
            return None

    def state(self) -> str:
        current = self.current()
        if current == self.after:
            return "after"
        if current == self.before:
            return "before"
        return "other"

    def unchanged(self) -> None:
        """Still the bytes the plan was made from, read now, just before the replace."""
        if self.current() != self.before:
            raise HdrfixError(
                "changed on disk while hdrfix was writing",
                self.rel,
                hint="every file hdrfix had replaced was restored and this one was left as you "
                "saved it; nothing was changed; run hdrfix again",
            )

    def staged(self) -> bool:
        try:
            return sha256(self.tmp.read_bytes()) == self.after
        except OSError:
            return False


@dataclass
class _Intent:
    root: Path
    action: str
    targets: list[_Target]
    direction: str = "forward"
    record: dict | None = None  # as loaded: its seal is checked before recovery acts on it

    @classmethod
    def of(cls, root: Path, changes: list[FileChange], action: str) -> _Intent:
        token = secrets.token_hex(4)
        targets = []
        for change in changes:
            path = root / change.rel
            exists = change.source.exists
            targets.append(
                _Target(
                    change.rel,
                    path,
                    path.with_name(f".{path.name}.{token}.hdrfix-tmp"),
                    change.source.digest if exists else None,
                    sha256(change.new_bytes),
                    change.source.raw if exists else None,
                )
            )
        return cls(root, action, targets)

    # -- the record on disk ------------------------------------------------------------------
    def write(self) -> None:
        data = {
            "format": 1,
            "action": self.action,
            "direction": self.direction,
            "files": [
                {
                    "path": t.rel,
                    "tmp": t.tmp.name,
                    "sha256_before": t.before,
                    "sha256_after": t.after,
                    "pre_image": None
                    if t.pre_image is None
                    else base64.b64encode(t.pre_image).decode("ascii"),
                }
                for t in self.targets
            ],
        }
        from hdrfix.core.seal import seal

        data["seal"] = seal(self.root, data)  # recovery acts on records hdrfix wrote here
        (self.root / FOLDER).mkdir(exist_ok=True)
        writable(self.root, INTENT, own=True)
        tmp = writable(self.root, _INTENT_TMP, own=True)
        _stage(tmp, dumps(data).encode("utf-8"), None)
        os.replace(tmp, self.root / INTENT)
        _sync_folders([self.root / INTENT])

    @classmethod
    def load(cls, root: Path) -> _Intent | None:
        from hdrfix.core.records import intent_files, parse

        if not os.path.lexists(root / INTENT):
            return None
        writable(root, INTENT, own=True)  # a regular file in a real .hdrfix/
        refuse_tracked(root, INTENT)
        data = parse(root, INTENT, "a commit record")
        sealed = copy.deepcopy(data)  # as written: intent_files decodes the pre-images in place
        files = intent_files(data, INTENT, OWN)
        targets = [
            _Target(
                f["path"],
                root / f["path"],
                (root / f["path"]).with_name(f["tmp"]),
                f["sha256_before"],
                f["sha256_after"],
                f["pre_image"],
            )
            for f in files
        ]
        for target in targets:
            own = target.rel in OWN
            writable(root, target.rel, INTENT, own=own)
            tmp_rel = posixpath.join(posixpath.dirname(target.rel), target.tmp.name)
            writable(root, tmp_rel, INTENT, own=own)
            if target.pre_image is not None and sha256(target.pre_image) != target.before:
                raise HdrfixError(
                    f"the pre-image of {target.rel} does not match its recorded hash",
                    INTENT,
                    hint="check the files it lists with git, then delete it",
                )
        return cls(root, data["action"], targets, data["direction"], sealed)

    def refuse_unwritable(self, kinds: tuple[str, ...]) -> None:
        """Every file is of a kind the recorded phases write (:meth:`load` checked that each,
        and its temporary, is a path hdrfix may write); else nothing of it is acted on."""
        for target in self.targets:
            writer = f"`hdrfix {self.action}`"
            why = None if target.rel in OWN else out_of_reach(target.rel, kinds, writer)
            if why:
                raise HdrfixError(
                    f"names {target.rel}, which {why}",
                    INTENT,
                    hint="hdrfix does not act on it; check the files it lists with git, then "
                    "delete it (nothing was changed)",
                )

    def refuse_unsealed(self) -> None:
        from hdrfix.core.seal import refuse_unsealed

        refuse_unsealed(self.root, self.record, INTENT)

    def remove(self) -> None:
        for target in self.targets:
            target.tmp.unlink(missing_ok=True)
        (self.root / INTENT).unlink(missing_ok=True)

    # -- recovery ----------------------------------------------------------------------------
    def can_roll_forward(self) -> bool:
        """Forward only when replacing had begun and every file not yet replaced is staged:
        before that the user has nothing of the commit yet, and a roll back is exact."""
        states = [t.state() for t in self.targets]
        self._refuse_foreign(states)
        if self.direction != "forward" or "after" not in states:
            return False
        return all(s == "after" or t.staged() for t, s in zip(self.targets, states))

    def roll_back(self) -> None:
        if self.direction != "back":
            # A kill during the roll back must not be finished forward by the next run.
            self.direction = "back"
            with contextlib.suppress(OSError):  # a full disk must not stop the roll back
                self.write()
        for target in reversed(self.targets):
            if target.state() != "after":
                continue
            if target.pre_image is None:
                target.path.unlink()
            else:
                target.tmp.unlink(missing_ok=True)  # its new bytes, or an earlier try's
                _stage(target.tmp, target.pre_image, target.path)
                replace(target.tmp, target.path)
        _sync_folders(t.path for t in self.targets)
        self.remove()

    def _refuse_foreign(self, states: list[str]) -> None:
        for target, state in zip(self.targets, states):
            if state == "other":
                raise HdrfixError(
                    f"an interrupted `hdrfix {self.action}` left this file, and it was "
                    "changed since, so hdrfix cannot tell how to finish",
                    target.rel,
                    hint=f"restore it (e.g. git checkout), then delete {INTENT}",
                )


def _stage(tmp: Path, data: bytes, like: Path | None) -> None:
    """Write ``tmp`` (created, never reused) durably, with the mode of ``like`` if it exists."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if like is not None and like.exists():
            os.chmod(tmp, like.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sync_folders(paths: Iterable[Path]) -> None:
    """A replace is durable once its folder is fsynced (where the platform allows it)."""
    for folder in sorted({p.parent for p in paths}):
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
