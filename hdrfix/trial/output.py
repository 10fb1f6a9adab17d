"""The framework's own prints (banners at import, architecture tables in ``__init__``, progress
in its steps) go to a log file in the report folder: the terminal shows trial's table only."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


class FrameworkOutput:
    """``sys.stdout`` and ``sys.stderr`` into ``path`` while :meth:`capturing`; :meth:`outside`
    gives trial's own messages (progress) the real streams back for a moment."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._saved: tuple[TextIO, TextIO] | None = None

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", encoding="utf-8", errors="replace") as log:
            self._saved = (sys.stdout, sys.stderr)
            try:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    yield
            finally:
                self._saved = None

    @contextlib.contextmanager
    def outside(self) -> Iterator[None]:
        if self._saved is None:
            yield
            return
        inside = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = self._saved
        try:
            yield
        finally:
            sys.stdout, sys.stderr = inside

    def lines(self) -> int:
        """How many lines the framework wrote (0 where nothing was captured)."""
        if self.path is None or not self.path.is_file():
            return 0
        with open(self.path, encoding="utf-8", errors="replace") as log:
            return sum(1 for _ in log)
