"""Setting values in the ``normalization`` section of every target config, as plan items.

A config may hold several YAML documents: each document whose ``normalization`` holds
``log_delta_abs_max`` is a target of its own, and the others are left alone. The section may
sit deeper than the top level (``data.normalization``: :func:`targets.sections_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hdrfix.kit.targets import CONFIG_MARKER, sections_of
from hdrfix.lang.errors import HdrfixError

if TYPE_CHECKING:  # migrate-checkpoint reads a config without a repository
    from hdrfix.core.plugin import PhasePlan
    from hdrfix.core.repo import Repo


def plan_values(plan: PhasePlan, repo: Repo, configs: list[str], values: Mapping[str, Any]) -> None:
    """Record each value as done or to do, and the edited text of each config that changes."""
    from hdrfix.lang import yamledit

    for rel in configs:
        text = new = repo.text(rel)
        paths = sections_of(text, rel)
        for path in paths:
            new = yamledit.set_values(
                new, rel, path, dict(values), holding=CONFIG_MARKER, along=tuple(paths)
            )
        for path in paths:
            before = yamledit.sections(text, rel, path, holding=CONFIG_MARKER)
            # a key hdrfix adds is reported at the line it will have
            after = yamledit.sections(new, rel, path, holding=CONFIG_MARKER) if new != text else []
            for i, (section, offset) in enumerate(before):
                lines = _lines(section, offset)
                added = _lines(*after[i]) if i < len(after) else {}
                for key, value in values.items():
                    current = yamledit.get(section, key)
                    what = f"{path}.{key}: {_show(value)}"
                    if yamledit.same_value(current, value):
                        plan.done(rel, lines.get(key), what)
                    else:
                        plan.todo(rel, lines.get(key) or added.get(key) or lines.get(None), what)
        if new != text:
            plan.text_edits[rel] = new


def _lines(section: Any, offset: int) -> dict[str | None, int]:
    return {k: line + offset for k, line in _key_lines(section).items()}


def section_value(repo: Repo, rel: str, key: str) -> Any:
    """``normalization.<key>`` of a target config, as :func:`value_in` reads it."""
    return value_in(repo.text(rel), rel, key)


def value_in(text: str, rel: str, key: str) -> Any:
    """``normalization.<key>`` in the target documents of ``text`` (None if absent or none).

    One value has to stand for the whole file, so documents that disagree are an error.
    """
    from hdrfix.lang import yamledit

    seen: list[tuple[Any, int, str]] = []  # (value, line, section) per target section
    for path in sections_of(text, rel):
        for section, offset in yamledit.sections(text, rel, path, holding=CONFIG_MARKER):
            lines = _key_lines(section)
            seen.append((section.get(key), lines.get(key, lines.get(None, 0)) + offset, path))
    for value, line, path in seen[1:]:
        if not _agree(value, seen[0][0]):
            raise HdrfixError(
                f"its YAML documents disagree on {path}.{key} "
                f"({_show(seen[0][0])} at line {seen[0][1]}, {_show(value)} here)",
                rel,
                line,
                "give every document the same value, or split them into separate files",
            )
    return seen[0][0] if seen else None


def _agree(a: Any, b: Any) -> bool:
    from hdrfix.lang import yamledit

    if isinstance(b, (bool, int, float, str)):
        return yamledit.same_value(a, b)  # 6 and 6.0 agree, true and 1 do not
    return bool(a == b)


def _key_lines(section: Any) -> dict[str | None, int]:
    """1-based line of each key; ``None`` maps to the section's first key (where to add one)."""
    lines: dict[str | None, int] = {}
    lc = getattr(section, "lc", None)
    if lc is None:
        return lines
    for key in section:
        try:
            lines[key] = lc.key(key)[0] + 1
        except (KeyError, TypeError):
            continue
    if lines:
        lines[None] = min(v for v in lines.values())
    return lines


def _show(value: Any) -> str:
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)
