"""Which files and functions can hold an exponential, decided from their bytes before any parse.

A test here must be *necessary*: whatever :mod:`hdrfix.kit.logdomain.exps` takes for an
exponential has to pass it, or a site goes unseen and unclamped. Every spelling there names
``exp``/``expm1``/``exp2`` (a call, a method, an import or assignment binding an alias, a
``getattr`` string), ``pow``/``power``/``float_power``, or writes ``**``; so the test is those
words as whole identifiers, or ``**``. Two ways around the words are taken into account too:
a ``getattr`` whose string is spelled with escapes or split into adjacent literals
(``"ex" "p"``), and identifiers written with compatibility characters, which Python reads
after NFKC normalisation (``ｅｘｐ`` is ``exp``).

A plain substring test would not do: ``exp`` is in ``except`` and ``expand``, so nearly every
file would pass; ``pow(`` misses ``np.power(np.e, x)`` and ``pow (e, x)``.
"""

from __future__ import annotations

import re
import unicodedata

_WORDS = re.compile(rb"\*\*|\b(?:exp(?:m1|2)?_?|(?:float_)?pow(?:er)?)\b")
_GETATTR = re.compile(rb"\bgetattr\b")
# A string literal that is not written out plainly: an escape, or two literals in a row
# (whitespace, comments and line continuations between them; an optional prefix before the
# second one).
_HIDDEN_STRING = re.compile(rb"\\|[\"'](?:\s|#[^\r\n]*|\\)*[rRuUbBfF]{0,2}[\"']")


def may_exponentiate(raw: bytes | str) -> bool:
    """False only when no exponential can be written in ``raw`` (a file or a function)."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    if _plain(data):
        return True
    if data.isascii():
        return False
    text = data.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return _plain(unicodedata.normalize("NFKC", text).encode("utf-8", "surrogateescape"))


def _plain(data: bytes) -> bool:
    # substring tests first: a regex tried at every position of every file costs more than
    # reading the file
    if not (b"exp" in data or b"**" in data or b"pow" in data or b"getattr" in data):
        return False
    if _WORDS.search(data):
        return True
    return bool(_GETATTR.search(data)) and bool(_HIDDEN_STRING.search(data))
