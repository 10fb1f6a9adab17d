"""Recovery acts only on a commit record that hdrfix itself wrote, in this working tree.

A roll back puts the bytes an intent holds into the files it names. Git keeps a tracked intent
out (refused), but one can also arrive untracked: unpacked from a tarball, or written by
``git apply`` of a pull request's patch. Its paths and kinds pass every check when it names,
say, ``setup.py`` with the hash that file has now, so only its origin tells it apart. Each intent
therefore carries a seal: an HMAC-SHA256 (the standard library's ``hmac``) of its content and
of the working tree's real path, keyed by a random secret that lives outside every repository,
in the user's state folder (``$HDRFIX_STATE_HOME``, else ``$XDG_STATE_HOME/hdrfix``, else
``~/.local/state/hdrfix``). A record without a seal that checks out is reported and never acted
on. The cost: a commit interrupted on one machine (or user, or path) is finished by hand on
another; the message says how.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from hdrfix.lang.errors import HdrfixError

KEY_BYTES = 32


def key_file() -> Path:
    own = os.environ.get("HDRFIX_STATE_HOME")
    if own:
        return Path(own) / "intent.key"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hdrfix" / "intent.key"


def _read_key() -> bytes | None:
    try:
        data = key_file().read_bytes()
    except (OSError, RuntimeError):  # RuntimeError: no home folder to find the key in
        return None
    return data if len(data) == KEY_BYTES else None


def _make_key() -> bytes:
    """The key, made once per user: written whole to a temporary file, then linked into place,
    so two runs starting together agree on one key and no run reads half of one."""
    path = key_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another run made it first: use that one
    finally:
        tmp.unlink(missing_ok=True)
    key = _read_key()
    if key is None:
        raise OSError(f"{path} does not hold a key of {KEY_BYTES} bytes")
    return key


def _mac(key: bytes, root: Path, record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "seal"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    message = os.path.realpath(root).encode("utf-8", "surrogateescape") + b"\0" + text.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal_key() -> bytes:
    """This user's key, made on first use; one line (exit 2) where it cannot be kept."""
    try:
        return _read_key() or _make_key()
    except (OSError, RuntimeError) as exc:
        where = os.environ.get("HDRFIX_STATE_HOME") or "the user's state folder"
        raise HdrfixError(
            f"cannot keep hdrfix's key for commit records in {where}: "
            f"{getattr(exc, 'strerror', None) or exc}",
            hint="set HDRFIX_STATE_HOME to a folder you can write (nothing was changed)",
        ) from None


def seal(root: Path, record: dict[str, Any]) -> str:
    """The seal of ``record`` for the tree at ``root``."""
    return _mac(seal_key(), root, record)


def sealed_here(root: Path, record: dict[str, Any]) -> bool:
    """Whether ``record`` carries the seal this user's key gives it for this tree."""
    given, key = record.get("seal"), _read_key()
    if not isinstance(given, str) or key is None:
        return False
    return hmac.compare_digest(given, _mac(key, root, record))


def refuse_unsealed(root: Path, record: dict[str, Any] | None, rel: str) -> None:
    if record is None or not sealed_here(root, record):
        raise HdrfixError(
            "was not written by hdrfix in this working tree for this user (its seal does not "
            "check out), so hdrfix does not act on it",
            rel,
            hint="check the files it lists with git, then delete it (nothing was changed)",
        )
