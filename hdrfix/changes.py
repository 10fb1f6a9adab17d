"""A run's edits: shown as a unified diff, checked, then written all together or not at all."""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hdrfix.errors import HdrfixError
from hdrfix.lines import NEWLINE
from hdrfix.sourcefile import SourceFile, sha256


@dataclass(frozen=True)
class FileChange:
    source: SourceFile
    new_text: str

    @property
    def rel(self) -> str:
        return self.source.rel

    @property
    def new_bytes(self) -> bytes:
        return self.source.encode(self.new_text)

    def diff(self) -> str:
        return unified_diff(self.rel, self.source.text, self.new_text)


def unified_diff(rel: str, old: str, new: str) -> str:
    """git-style diff with ``a/``/``b/`` paths; line endings are not shown, as in git."""
    old_lines = NEWLINE.split(old)
    new_lines = NEWLINE.split(new)
    lines = difflib.unified_diff(old_lines, new_lines, f"a/{rel}", f"b/{rel}", lineterm="", n=3)
    return "".join(line + "\n" for line in lines)


def verify_parses(changes: Iterable[FileChange]) -> None:
    """Every edited file must still parse; a failure here is hdrfix's bug, never written."""
    from ruamel.yaml import YAML, YAMLError

    from hdrfix.pyfile import parse_tree
    from hdrfix.yamledit import LARGE

    for change in changes:
        try:
            if change.rel.endswith(".py"):
                parse_tree(change.new_text, change.rel)
            elif change.rel.endswith((".yaml", ".yml")) and len(change.new_text) <= LARGE:
                # (A large file was edited inside one entry that yamledit re-parsed already.)
                list(YAML(typ="safe", pure=True).load_all(change.new_text))
        except (SyntaxError, YAMLError) as exc:
            raise HdrfixError(
                f"internal error: the edited file would not parse ({exc})",
                change.rel,
                hint="nothing was written; please report this",
            ) from None


def write_all(root: Path, changes: list[FileChange]) -> None:
    """Write every change or none.

    Each new file is first written beside its target (same folder, same mode); only when all are
    staged are they moved into place with ``os.replace``. If a move fails, the files already
    moved get their original bytes back, so a failure at any point leaves the repo as it was.
    """
    preflight(root, changes)
    staged: list[tuple[Path, Path, FileChange]] = []
    try:
        for change in changes:
            target = root / change.rel
            staged.append((_stage(target, change.new_bytes), target, change))
    except OSError as exc:
        _discard(tmp for tmp, _, _ in staged)
        raise HdrfixError(
            f"could not write ({exc.strerror or exc})", _rel(root, exc), hint="nothing was changed"
        ) from None
    done: list[tuple[Path, FileChange]] = []
    try:
        for tmp, target, change in staged:
            replace(tmp, target)
            done.append((target, change))
    except OSError as exc:
        _restore(done)
        _discard(tmp for tmp, _, _ in staged)
        raise HdrfixError(
            f"could not write ({exc.strerror or exc})",
            _rel(root, exc),
            hint="every file was restored; nothing was changed",
        ) from None


def replace(tmp: Path, target: Path) -> None:
    """The one place a target is overwritten; tests inject faults here."""
    os.replace(tmp, target)


def preflight(root: Path, changes: list[FileChange]) -> None:
    for change in changes:
        target = root / change.rel
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


def _stage(target: Path, data: bytes) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".hdrfix-tmp", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _restore(done: list[tuple[Path, FileChange]]) -> None:
    for target, change in reversed(done):
        if not change.source.exists:
            target.unlink(missing_ok=True)
            continue
        tmp = _stage(target, change.source.raw)
        os.replace(tmp, target)


def _discard(tmps: Iterable[Path]) -> None:
    for tmp in tmps:
        tmp.unlink(missing_ok=True)


def _rel(root: Path, exc: OSError) -> str | None:
    name = exc.filename
    if not name:
        return None
    try:
        return os.path.relpath(name, root)
    except ValueError:
        return str(name)
