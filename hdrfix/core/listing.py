"""The files of the user's repository, listed and read with as few system calls as can be.

A run on a repository of thousands of files spends its time here, not in its parsers: each
file is listed and read once, and a listing already knows which names are links, so that no
file needs a ``stat`` of its own (a folder's directory entries say which are plain files,
whether the names come from a walk or from git) and finding a file's real name
(:meth:`hdrfix.core.repo.Repo.canonical`) needs no ``lstat`` per file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Folders that never hold the user's framework code, whatever .gitignore says.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".hdrfix",
        ".venv",
        "venv",
        "env",
        ".env",
        "node_modules",
        "__pycache__",
        "build",
        "dist",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "site-packages",
        ".eggs",
    }
)
#: What one ``read`` asks for: most source files fit, and a larger one is read on in turns.
#: Under malloc's 128 KiB mmap threshold: a buffer above it was mapped and unmapped at every
#: file, and reading 5,000 small files took five times as long.
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Listing:
    """Names relative to the root, with ``/``, of what is a file on disk now (a link to a file
    counts, and so does the file it leads to when that is listed too)."""

    files: list[str]  # sorted
    links: frozenset[str]  # those of ``files`` that are symbolic links


def list_files(root: str) -> Listing:
    """Files git would consider (tracked or not ignored) when ``root`` is a git working tree's
    top; every file found by a walk (not into links, nor into :data:`SKIP_DIRS`) elsewhere.
    A name that is not a file on disk (deleted but still in git's index, a dangling link, a
    link to a folder) is not listed: such a name is nobody's target and must not stop a run."""
    names = _git_listed(root) if os.path.exists(os.path.join(root, ".git")) else None
    files, links = _walk(root) if names is None else _existing(root, names)
    files.sort()
    return Listing(files, frozenset(links))


def read_bytes(path: str) -> bytes:
    """The bytes of the file at ``path``: ``open(path, 'rb').read()`` without the buffered
    reader's set-up and ``fstat`` calls, a third of the cost of reading a small file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:
            return data
        chunks = [data]
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _git_listed(root: str) -> list[str] | None:
    import subprocess  # 3 ms to import, and only a git checkout asks git

    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    listed = [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]
    return [p for p in listed if not SKIP_DIRS.intersection(p.split("/")[:-1])]


def _existing(root: str, names: list[str]) -> tuple[list[str], list[str]]:
    """Those of ``names`` that are files: each folder's entries read at once, whose types say
    which are files and links (an ``lstat`` per file took three times as long)."""
    by_folder: dict[str, list[str]] = {}
    for name in names:
        folder, _, base = name.rpartition("/")
        by_folder.setdefault(folder, []).append(base)
    files: list[str] = []
    links: list[str] = []
    for folder, bases in by_folder.items():
        entries = {entry.name: entry for entry in _entries(root, folder)}
        for base in bases:
            entry = entries.get(base)
            if entry is not None:
                _add_file(entry, f"{folder}/{base}" if folder else base, files, links)
    return files, links


def _walk(root: str) -> tuple[list[str], list[str]]:
    """Like ``os.walk`` without following links, an unreadable folder skipped; a directory
    entry says whether it is a folder, a file or a link without a ``stat`` (but for a link)."""
    files: list[str] = []
    links: list[str] = []
    folders = [""]
    while folders:
        folder = folders.pop()
        for entry in _entries(root, folder):
            name = entry.name if not folder else f"{folder}/{entry.name}"
            if _is_folder(entry):
                if entry.name not in SKIP_DIRS and not entry.name.endswith(".egg-info"):
                    folders.append(name)
            else:
                _add_file(entry, name, files, links)
    return files, links


def _entries(root: str, folder: str) -> list[os.DirEntry[str]]:
    """A folder's entries; none where it cannot be read (gone, no longer a folder, denied)."""
    try:
        with os.scandir(os.path.join(root, folder) if folder else root) as found:
            return list(found)
    except OSError:
        return []


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _add_file(entry: os.DirEntry[str], name: str, files: list[str], links: list[str]) -> None:
    """``name`` to ``files`` if the entry is a file or a link to one, and then to ``links`` if
    it is a link."""
    try:
        if entry.is_file():
            files.append(name)
            if entry.is_symlink():
                links.append(name)
    except OSError:
        pass
