"""Setting values in the ``normalization`` section of every target config, as plan items."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hdrfix.plugin import PhasePlan
from hdrfix.repo import Repo
from hdrfix.targets import SECTION


def plan_values(plan: PhasePlan, repo: Repo, configs: list[str], values: Mapping[str, Any]) -> None:
    """Record each value as done or to do, and the edited text of each config that changes."""
    from hdrfix import yamledit

    for rel in configs:
        text = repo.text(rel)
        section, offset = yamledit.section(text, rel, SECTION)
        lines = {k: line + offset for k, line in _key_lines(section).items()}
        for key, value in values.items():
            current = yamledit.get(section, key)
            what = f"{SECTION}.{key}: {_show(value)}"
            if yamledit.same_value(current, value):
                plan.done(rel, lines.get(key), what)
            else:
                plan.todo(rel, lines.get(key) or lines.get(None), what)
        new = yamledit.set_values(text, rel, SECTION, dict(values))
        if new != text:
            plan.text_edits[rel] = new


def section_value(repo: Repo, rel: str, key: str) -> Any:
    from hdrfix import yamledit

    section, _ = yamledit.section(repo.text(rel), rel, SECTION)
    return section.get(key) if hasattr(section, "get") else None


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
    return str(value).lower() if isinstance(value, bool) else str(value)
