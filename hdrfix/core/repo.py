"""The user's repository as one run sees it: files found cheaply, read once, edited in memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hdrfix.core.listing import Listing, list_files, read_bytes
from hdrfix.lang.errors import HdrfixError
from hdrfix.lang.pyfile import PyFile
from hdrfix.lang.sourcefile import SourceFile, real_rel

#: A needle of :meth:`Repo.candidates`.
Needle = bytes | tuple[bytes, ...] | Callable[[bytes], bool]
#: How many bytes of the files a run filters it keeps, so that each is read from disk once.
KEEP_BYTES = 256 * 1024 * 1024


def _test(needle: Needle) -> Callable[[bytes], bool]:
    """The needle as one function of the bytes, decided once rather than at every file."""
    if isinstance(needle, bytes):
        return lambda raw: needle in raw
    if isinstance(needle, tuple):
        return lambda raw: any(n in raw for n in needle)
    return needle


@dataclass
class Repo:
    """Reads go through here so that each file is read and parsed at most once per run.

    Phases never write: they hand edits to :meth:`set_text` (YAML) or to a :class:`PyFile`'s
    functions, and the engine turns the difference against disk into one change set.
    """

    root: Path
    _sources: dict[str, SourceFile] = field(default_factory=dict)
    _py: dict[str, PyFile] = field(default_factory=dict)
    _texts: dict[str, str] = field(default_factory=dict)
    _listing: Listing | None = None
    _canonical: dict[str, str] = field(default_factory=dict)
    _folders: dict[str, str | None] = field(default_factory=dict)
    _raw: dict[str, bytes] = field(default_factory=dict)
    _kept: int = 0
    _prefix: str = field(init=False, default="")  # the root, ending in a separator
    _unreal: set[str] | None = None  # listed folders reached through a link

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._prefix = os.path.join(os.fspath(self.root), "")
        if not self.root.is_dir():
            raise HdrfixError(
                "repository folder not found",
                str(self.root),
                hint="pass the framework checkout with --repo PATH",
            )

    # -- finding files -----------------------------------------------------------------------
    def files(self, suffixes: tuple[str, ...]) -> list[str]:
        """The listed names that are files on disk: a link and its target both, as a copy of the
        repo needs them. Not there (deleted but still in git's index, a dangling link) means not
        listed: such a name is nobody's target and must not stop a run."""
        return [rel for rel in self._listed().files if rel.endswith(suffixes)]

    def _listed(self) -> Listing:
        if self._listing is None:
            self._listing = list_files(os.fspath(self.root))
        return self._listing

    def _real_listed(self, suffixes: tuple[str, ...]) -> list[str]:
        """The real names of the listed files, each once, in order: :meth:`canonical` of each,
        but a file the listing found plain in a real folder is its own real name (no ``lstat``
        per file), and where all are, the listing is its own answer."""
        names = self.files(suffixes)
        links = self._listed().links
        if self._unreal is None:
            folders = {rel.rpartition("/")[0] for rel in self._listed().files}
            self._unreal = {f for f in folders if self._real_folder(f) != (f or ".")}
        if not links and not self._unreal:
            return names
        real = set()
        for rel in names:
            if rel not in links and rel.rpartition("/")[0] not in self._unreal:
                real.add(rel)
            else:
                real.add(self.canonical(rel))
        # The real file's suffix decides, as it decides how the file is decoded and checked: a
        # `.py` link to a `.txt` file is no Python file.
        return sorted(r for r in real if r.endswith(suffixes))

    def canonical(self, rel: str) -> str:
        """The name of the real file ``rel`` leads to, so that a file reached through a symlink is
        read, edited, journaled and written (replacing the target, keeping the link) under one
        name. A path that leads out of the repo stays as given, for :meth:`source` to refuse."""
        if rel not in self._canonical:
            folder, _, name = rel.rpartition("/")
            parent = self._real_folder(folder)
            link = os.path.islink(os.path.join(self.root, rel))
            if parent is None or name in ("", ".", "..") or link:
                self._canonical[rel] = real_rel(self.root, rel) or rel
            else:
                self._canonical[rel] = f"{parent}/{name}" if parent != "." else name
        return self._canonical[rel]

    def _real_folder(self, folder: str) -> str | None:
        # Resolved once per folder: a full realpath per file triples the cost of a listing.
        if folder not in self._folders:
            self._folders[folder] = real_rel(self.root, folder or ".")
        return self._folders[folder]

    def exists(self, rel: str) -> bool:
        return (self.root / self.canonical(rel)).exists()

    def candidates(self, suffixes: tuple[str, ...], *needles: Needle) -> list[str]:
        """Files whose bytes pass every needle (bytes: contained; a tuple: one of its needles
        contained; a function: true of the bytes): a cheap filter before any parse. Each file
        once, by its canonical name, and read once in the run (see :meth:`_bytes`)."""
        tests = [_test(n) for n in needles]
        found = []
        kept = self._raw
        for rel in self._real_listed(suffixes):
            try:
                raw = kept.get(rel)
                if raw is None:
                    raw = self._bytes(rel)
            except FileNotFoundError:
                continue  # gone since the listing
            except OSError:
                found.append(rel)  # an unreadable file is reported if it turns out a target
                continue
            for test in tests:
                if not test(raw):
                    break
            else:
                found.append(rel)
        return found

    def _bytes(self, rel: str) -> bytes:
        """A file's bytes, read from disk once: several lookups of a run filter the same files
        (the framework, the sites elsewhere, the network), and the one parsed is read then too.
        Kept up to :data:`KEEP_BYTES` in all; a larger repository reads the rest again."""
        if rel in self._sources:
            return self._sources[rel].raw
        raw = self._raw.get(rel)
        if raw is None:
            raw = read_bytes(self._prefix + rel)
            if self._kept + len(raw) <= KEEP_BYTES:
                self._raw[rel] = raw
                self._kept += len(raw)
        return raw

    # -- reading -----------------------------------------------------------------------------
    def source(self, rel: str) -> SourceFile:
        rel = self.canonical(rel)
        if rel not in self._sources:
            self._sources[rel] = SourceFile.read(self.root, rel, self._raw.pop(rel, None))
        return self._sources[rel]

    def python(self, rel: str) -> PyFile:
        rel = self.canonical(rel)
        if rel not in self._py:
            self._py[rel] = PyFile.parse(self.source(rel))
        return self._py[rel]

    def restage(self, rel: str) -> None:
        """Index an edited Python file anew, so the next phase analyses the code as it now is."""
        rel = self.canonical(rel)
        current = self._py[rel]
        if current.edited:
            self._py[rel] = current.reparsed({})

    def text(self, rel: str) -> str:
        """The current text: as edited by earlier phases of this run, else as on disk."""
        rel = self.canonical(rel)
        if rel in self._py:
            return self._py[rel].text()
        if rel in self._texts:
            return self._texts[rel]
        return self.source(rel).text

    def set_text(self, rel: str, text: str) -> None:
        rel = self.canonical(rel)
        if rel.endswith(".py"):
            raise ValueError("Python files are edited per function through Repo.python()")
        self._texts[rel] = text

    def changed(self) -> Iterator[tuple[SourceFile, str]]:
        """(original, new text) for each file whose text differs from disk, in path order."""
        rels = sorted(set(self._texts) | set(self._py))
        for rel in rels:
            new = self.text(rel)
            source = self.source(rel)
            if new != source.text:
                yield source, new
