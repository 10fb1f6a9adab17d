"""Minimal-diff value edits on YAML text.

A plain ruamel load-and-dump rewrites ``\\u2192`` escapes, turns ``null`` into an empty
value, drops whitespace-only lines and reindents. So this module uses ruamel only to
*locate* things (the round-trip loader's ``.lc`` line/column data and the scanner's token
offsets), replaces the text of the changed values alone, and then re-parses the result and
checks it holds exactly the intended data. Every byte outside the edited values stays as it was.

Rules (see :func:`set_values`):

- A value equal to the intended one is left alone: ``6`` and ``6.0`` are equal, and so are
  ``huber``, ``'huber'`` and ``"huber"``. An unchanged file comes back byte for byte.
- The quoting style is kept: single stays single, double stays double, plain stays plain
  unless the new string needs quotes (then single quotes). Numbers and booleans are always
  written plain, as quotes would turn them into strings.
- Comment column: an inline comment after a changed value keeps its column when it can; the
  gap before ``#`` grows or shrinks by the change in value length and never drops below one
  space. (Columns are counted in characters.)
- Only the section changes (``sharing``). A key the section gets from a merge
  (``<<: *base``) is edited where it is DEFINED, in the anchored mapping, when nothing but the
  section (and the anchor's own top-level entry, a template) reads it there; when another
  section also merges it, the merge is split: the section gets the key as its own, which
  overrides the base, and the base stays as the others read it. A section that is itself read
  elsewhere (``normalization: &n`` with ``eval: *n``, or ``normalization: *n`` with another
  ``<<: *n``) cannot be edited without changing that place: refused with a YamlEditError
  naming it.
- A scalar alias (``key: *x``) in the section is replaced by the new value (``&x`` stays for
  its other readers). Scalar values carrying an anchor or tag, and block scalars (``|``,
  ``>``), are refused with a YamlEditError: editing them safely needs a human.

The parts, by job: ``loading`` (parsing, alias and nesting checks), ``narrow`` (large files),
``queries``, ``sharing`` (who else reads a value), ``setvalues`` (the edit), ``edits`` and
``render`` (the text of one changed or added key), ``tokens`` and ``breaks`` (offsets and line
breaks), ``values`` (merges, equality) and ``verify`` (the safety net).
"""

from __future__ import annotations

from hdrfix.lang.yamledit.loading import ALIAS_RATIO_LIMIT, YamlEditError, load, load_all
from hdrfix.lang.yamledit.narrow import LARGE
from hdrfix.lang.yamledit.queries import MISSING, Missing, get, has_key, section, sections
from hdrfix.lang.yamledit.setvalues import set_values
from hdrfix.lang.yamledit.values import Scalar, same_value

__all__ = [
    "ALIAS_RATIO_LIMIT",
    "LARGE",
    "MISSING",
    "Missing",
    "Scalar",
    "YamlEditError",
    "get",
    "has_key",
    "load",
    "load_all",
    "same_value",
    "section",
    "sections",
    "set_values",
]
