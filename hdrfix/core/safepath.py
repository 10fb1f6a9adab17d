"""The one gate every write passes: which paths hdrfix may write, whoever names them.

hdrfix trusts the installed phases' code and the user's command line, and nothing in the
repository (docs/threat-model.md). A path read from a record (the journal, the intent) or
planned by a phase is written only when it is relative and normalised, stays inside the
working tree after every link is resolved, passes through no ``.git`` (the repository's or a
worktree's or submodule's, file or folder), is not hdrfix's own state, and is a regular file
or absent. :func:`writable` checks all of it; :func:`record_path` checks the form alone, for
loading a record before the tree is looked at.
"""

from __future__ import annotations

import os
import posixpath
import stat
import unicodedata
from pathlib import Path

from hdrfix.lang.errors import HdrfixError

STATE = ".hdrfix"
_GIT = ".git"


def record_path(rel: object, where: str) -> str:
    """``rel`` if its form is one hdrfix may write; else one line naming the record ``where``."""
    problem = _form(rel)
    if problem:
        raise HdrfixError(
            f"names {_quoted(rel)}, {problem}",
            where,
            hint="hdrfix does not act on it; restore the record from version control or "
            "delete it (nothing was changed)",
        )
    assert isinstance(rel, str)
    return rel


def _form(rel: object) -> str | None:
    if not isinstance(rel, str) or not rel:
        return "which is not a path"
    if "\0" in rel or "\\" in rel:
        return "which holds a NUL or a backslash"
    if rel.startswith("/"):
        return "an absolute path"
    if posixpath.normpath(rel) != rel or {".", ".."} & set(rel.split("/")):
        return "which is not a normalised relative path"
    parts = [_folded(p) for p in rel.split("/")]
    if _GIT in parts:
        return "inside a git directory"
    if parts[0] == STATE:
        return "inside hdrfix's own state folder"
    return None


def _folded(name: str) -> str:
    """A name as a case-insensitive file system may take it: ``.GIT``, ``.git.`` and ``.g``
    U+200C ``it`` (HFS+ ignores such code points) are all ``.git`` there."""
    kept = "".join(c for c in name if unicodedata.category(c) != "Cf")
    return kept.rstrip(". ").lower() if kept.rstrip(". ") else kept.lower()


def _quoted(rel: object) -> str:
    text = repr(rel) if isinstance(rel, str) else type(rel).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def out_of_reach(rel: str, kinds: tuple[str, ...], writer: str) -> str | None:
    """Why ``writer`` (phases writing ``kinds``) could not have written ``rel``, or None.

    Phases find their files in hdrfix's listing, which never enters a virtual environment,
    ``site-packages``, ``node_modules`` or a build folder: a record naming
    ``.venv/.../sitecustomize.py`` would otherwise run code at every interpreter start."""
    from hdrfix.core.listing import SKIP_DIRS

    folders = rel.split("/")[:-1]
    skipped = [f for f in folders if f in SKIP_DIRS or f.endswith(".egg-info")]
    if skipped:
        return f"lies in {skipped[0]}/, a folder hdrfix never looks in"
    if not rel.endswith(kinds):
        return f"is a kind of file {writer} does not write"
    return None


def readable(root: Path, rel: str) -> bool:
    """Whether a recorded path may be read to compare hashes: a regular file inside the tree
    (a FIFO would block, a link to a device never end)."""
    path = root / rel
    resolved = os.path.realpath(path)
    real_root = os.path.realpath(root)
    return os.path.commonpath([resolved, real_root]) == real_root and path.is_file()


def writable(root: Path, rel: str, where: str | None = None, own: bool = False) -> Path:
    """The path to write for ``rel``, after checking everything in the module's rules.

    ``own`` admits hdrfix's own state files (the journal, the intent), which live in
    ``.hdrfix/``; ``where`` names the record ``rel`` came from, for the message.
    """
    if own:
        if not (isinstance(rel, str) and rel.startswith(STATE + "/") and rel.count("/") == 1):
            raise HdrfixError(f"internal error: {rel!r} is not a state file")
        state_dir(root)
    else:
        record_path(rel, where or rel)
    real_root = os.path.realpath(root)
    path = root / rel
    folder = root
    for part in rel.split("/")[:-1]:
        folder = folder / part
        _refuse_link_out(folder, real_root, rel, where)
    resolved = os.path.realpath(path)
    inside = os.path.relpath(resolved, real_root).replace(os.sep, "/")
    if os.path.commonpath([resolved, real_root]) != real_root or inside.startswith(".."):
        _refuse(rel, where, "resolves to a path outside the working tree")
    if not own and _form(inside):
        _refuse(rel, where, "resolves into a git directory or hdrfix's state")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        _refuse(rel, where, f"cannot be examined ({exc.strerror})")
    if not stat.S_ISREG(mode):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
        _refuse(rel, where, f"is {kind}")
    return path


def _refuse_link_out(folder: Path, real_root: str, rel: str, where: str | None) -> None:
    if folder.is_symlink():
        resolved = os.path.realpath(folder)
        if os.path.commonpath([resolved, real_root]) != real_root:
            _refuse(rel, where, f"passes through {folder.name}/, a link out of the working tree")


def _refuse(rel: str, where: str | None, problem: str) -> None:
    if where and where != rel:
        raise HdrfixError(
            f"names {rel}, which {problem}",
            where,
            hint="hdrfix does not act on it; nothing was changed",
        )
    raise HdrfixError(problem, rel, hint="hdrfix writes nothing there; nothing was changed")


def state_dir(root: Path) -> Path:
    """``.hdrfix/``, refused when it is a link or not a folder: its contents must stay here."""
    path = root / STATE
    if path.is_symlink():
        raise HdrfixError(
            "is a symbolic link; hdrfix keeps its journal, intent and lock only in a real "
            "folder inside the repository",
            STATE,
            hint="replace the link with a folder (move its journal.json into it); nothing was "
            "changed",
        )
    if path.exists() and not path.is_dir():
        raise HdrfixError("is not a folder", STATE, hint="remove or rename it; nothing was changed")
    return path


def refuse_hard_link(target: Path, rel: str) -> None:
    """A file with other names would lose them: hdrfix replaces a file whole (the only write
    that survives a crash), which gives the name a new inode. Refused rather than done."""
    try:
        links = os.lstat(target).st_nlink
    except FileNotFoundError:
        return
    if links > 1:
        raise HdrfixError(
            f"has {links} hard links; hdrfix replaces a file whole, which would cut this "
            "name off from the others",
            rel,
            hint="give it its own copy (cp --remove-destination on it) or leave it out "
            "(--exclude / --config); nothing was written",
        )
