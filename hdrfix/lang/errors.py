"""The one exception type that means "bad input": one line, exit code 2, nothing written; and
``shown``, how a path is put into such a line (or any other) so that printing it never raises."""

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


def shown(text: str) -> str:
    """A path (or a line naming one) fit to print or encode as UTF-8; never raises.

    A file name that is not UTF-8 arrives holding lone surrogates (``surrogateescape``, as the
    git listing and ``os.walk`` decode names); printing or encoding those raises. Each byte that
    is not UTF-8 shows as ``\\xNN``; a UTF-8 name is unchanged.
    """
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no file name makes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
