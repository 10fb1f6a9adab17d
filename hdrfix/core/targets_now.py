"""Which files a recorded phase could have written, computed now from the repository.

The journal is untrusted (docs/threat-model.md): revert writes a file only when the entry's
phase, planned again now on the repository as it is, with the target options the apply was
run with (recorded in the entry) and the project's own, names that file among its targets.
A phase writes a file only where it has something to check there, so the files of its items
(done, to do, not patched, not handled) are the files it may have written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hdrfix.core.plugin import Phase
from hdrfix.lang.errors import HdrfixError


def phase_targets(root: Path, entry: dict[str, Any], phases: Mapping[str, type[Phase]]) -> set[str]:
    """The files the entry's phases target now; one line when they cannot be planned."""
    from hdrfix.core import projectconfig
    from hdrfix.core.engine import options_for
    from hdrfix.core.journal import JOURNAL
    from hdrfix.core.repo import Repo

    repo = Repo(root)
    given: dict[str, Any] = {"extra": (), "phase_options": {}}
    for key, value in entry.get("targets", {}).items():
        paths = [value] if isinstance(value, str) else value
        kept = [str(root / p) for p in paths if (root / p).is_file()]  # gone since: dropped
        if kept:
            given[key] = kept[0] if isinstance(value, str) else tuple(kept)
    _, settings = projectconfig.load(root, phases)
    options = projectconfig.merged(settings, given)
    found: set[str] = set()
    for name in entry["phases"]:
        try:
            plan = phases[name]().plan(repo, options_for(options, phases[name]))
        except HdrfixError as exc:
            raise HdrfixError(
                f"cannot tell which files {name} (journal entry {entry['id']}) writes here, "
                f"so revert writes none: {exc}",
                JOURNAL,
                hint="fix that and revert again, or revert by hand (git checkout); nothing "
                "was changed",
            ) from None
        items = plan.items + plan.not_patched + plan.unhandled
        named = [i.path for i in items] + list(plan.text_edits)
        named += [rel for rel, _, _ in plan.function_edits]
        found.update(repo.canonical(rel) for rel in named)
    return found
