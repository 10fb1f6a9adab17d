"""The one exception type that means "bad input": one line, exit code 2, nothing written."""

from __future__ import annotations


class HdrfixError(Exception):
    """Bad input, reported as one line naming the file and line and what to do.

    The CLI turns it into ``hdrfix: <path>:<line>: <message>; <hint>`` on stderr and exit code 2.
    It is raised before anything is written, so a run that raises leaves the repo untouched.
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.hint = hint

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        text = f"{where}{self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return " ".join(text.split("\n"))
