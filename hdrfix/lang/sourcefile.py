"""Reading a file as text and writing it back with the same encoding, BOM and line endings."""

from __future__ import annotations

import codecs
import io
import os
import tokenize
from dataclasses import dataclass
from pathlib import Path

from hdrfix.lang.errors import HdrfixError


def sha256(data: bytes) -> str:
    import hashlib  # OpenSSL's start-up is a few ms of every run; a dry-run hashes nothing

    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SourceFile:
    """A file's bytes and their decoding.

    ``text`` keeps the file's own line endings (CRLF stays CRLF); ``encode`` gives the bytes back
    with the same encoding and BOM, so an unchanged text round-trips byte for byte.
    """

    root: Path
    rel: str
    raw: bytes
    encoding: str
    bom: bytes
    text: str
    exists: bool = True

    @property
    def path(self) -> Path:
        return self.root / self.rel

    @property
    def digest(self) -> str:
        return sha256(self.raw)

    def encode(self, text: str) -> bytes:
        return self.bom + text.encode(self.encoding)

    @classmethod
    def new(cls, root: Path, rel: str) -> SourceFile:
        """A file hdrfix is about to create (its journal): empty, and absent on disk."""
        return cls(root, rel, b"", "utf-8", b"", "", exists=False)

    @classmethod
    def read(cls, root: Path, rel: str, raw: bytes | None = None) -> SourceFile:
        """The file ``rel``; ``raw``: its bytes as this run already read them."""
        path = root / rel
        _refuse_outside(root, rel)
        if raw is None:
            raw = _read(path, rel)
        if rel.endswith(".py"):
            encoding, bom = _python_encoding(raw, rel)
        else:
            encoding, bom = "utf-8", (codecs.BOM_UTF8 if raw.startswith(codecs.BOM_UTF8) else b"")
        try:
            text = raw[len(bom) :].decode(encoding)
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise HdrfixError(
                f"not valid {encoding}", rel, line, "save the file as UTF-8 or declare its encoding"
            ) from None
        return cls(root, rel, raw, encoding, bom, text)


def _read(path: Path, rel: str) -> bytes:
    if path.is_dir():
        raise HdrfixError("is a directory, expected a file", rel, hint="point at the file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise HdrfixError("no such file", rel, hint="check the path") from None
    except PermissionError:
        raise HdrfixError(
            "cannot read the file (permission denied)",
            rel,
            hint="make it readable and run again",
        ) from None


def _python_encoding(raw: bytes, rel: str) -> tuple[str, bytes]:
    """PEP 263: a coding cookie or a UTF-8 BOM decides; the standard library reads both."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:
        raise HdrfixError(str(exc), rel, 1, "fix the coding declaration") from None
    if encoding == "utf-8-sig":
        return "utf-8", codecs.BOM_UTF8
    return encoding, b""


def real_rel(root: Path, rel: str) -> str | None:
    """``rel`` with every symlink resolved, relative to the real root; None if that leads out of
    the repository."""
    resolved = os.path.realpath(root / rel)
    real_root = os.path.realpath(root)
    if os.path.commonpath([resolved, real_root]) != real_root:
        return None
    return os.path.relpath(resolved, real_root).replace(os.sep, "/")


def _refuse_outside(root: Path, rel: str) -> None:
    """A symlink may not lead a write out of the repository."""
    if real_rel(root, rel) is None:
        raise HdrfixError(
            "resolves to a path outside the repository",
            rel,
            hint="hdrfix only edits files inside --repo",
        )
