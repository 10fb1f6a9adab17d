"""YAML text for a new scalar value, in the quoting style of the value it replaces when that
reads back as the same value.
"""

from __future__ import annotations

import math

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from hdrfix.lang.yamledit.breaks import _has_break
from hdrfix.lang.yamledit.values import Scalar


def _render(value: Scalar, style: str | None, flow: bool) -> str:
    """YAML text for ``value``; strings keep ``style`` (None plain, "'" or '"') when they can."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if style == '"' or not value.isprintable():
        return _double_quoted(value)
    if style == "'" or not _plain_ok(value, flow):
        return "'" + value.replace("'", "''") + "'"
    return value


def _format_float(value: float) -> str:
    """Like a human writes it: 6.0, 2.0, 1e-06, 11.090354889 (repr, which always round-trips)."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(value)


def _double_quoted(value: str) -> str:
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = []
    for ch in value:
        if ch in escapes:
            out.append(escapes[ch])
        elif not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _plain_ok(value: str, flow: bool) -> bool:
    """Whether ``value`` written plain reads back as the same string in its context.

    Asking the parser is simpler and safer than re-implementing YAML's plain-scalar rules
    ("true", "1e3", "a: b", " x", "a #b", "[x" all need quotes). The probe runs under YAML 1.2
    and 1.1, so "yes"/"on" get quotes too: they are booleans in files marked ``%YAML 1.1``.
    """
    if not value or value != value.strip() or _has_break(value):
        return False
    probe = f"{{k: {value}}}\n" if flow else f"k: {value}\n"
    return all(_reads_as(value, header + probe) for header in ("", "%YAML 1.1\n---\n"))


def _reads_as(value: str, probe: str) -> bool:
    try:
        parsed = YAML(typ="safe", pure=True).load(probe)
    except YAMLError:
        return False
    return isinstance(parsed, dict) and type(parsed.get("k")) is str and parsed["k"] == value
