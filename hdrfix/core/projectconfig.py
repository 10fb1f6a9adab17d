"""The framework repository's own hdrfix settings: ``.hdrfix.toml``, else ``[tool.hdrfix]`` in
its ``pyproject.toml``.

With the targets written down once, ``hdrfix apply``, ``--check`` in CI and a pre-commit hook
all see the same files: an included file restored by ``git checkout`` fails ``--check`` without
anyone repeating ``--include``. Flags given on the command line win over the file::

    [tool.hdrfix]
    config = ["configs/colleague_training_config.yaml"]
    framework = "train/patch_training_framework.py"
    include = ["src/npu/networks/patch_inpainting.py"]
    exclude = ["tools/diagnose_overflow.py"]

    [tool.hdrfix.phase1]
    clamp = 6.0
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hdrfix.core.plugin import Phase
from hdrfix.lang.errors import HdrfixError

FILES = (".hdrfix.toml", "pyproject.toml")
PATHS = {"framework": str, "network": str, "config": list, "include": list, "exclude": list}


def load(root: Path, phases: Mapping[str, type[Phase]]) -> tuple[str | None, dict[str, Any]]:
    """(the file it came from, its settings) with phase tables under ``phase_options``."""
    for name in FILES:
        path = root / name
        if not path.is_file():
            continue
        table = _table(path, name)
        if table is not None:
            settings = _checked(table, name, path.read_text(encoding="utf-8"), phases)
            return name, _from_root(root, settings)
    return None, {}


def _from_root(root: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Paths in the file are relative to the repository, wherever hdrfix is run from."""
    out = dict(settings)
    for key, kind in PATHS.items():
        if key in out:
            if kind is str:
                out[key] = str(root / out[key])
            else:
                out[key] = tuple(str(root / p) for p in out[key])
    return out


def merged(settings: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The command line's options over the file's: a flag given replaces the file's value."""
    out = dict(given)
    for key in PATHS:
        if not given.get(key) and key in settings:
            out[key] = settings[key]
    phase_options = {k: dict(v) for k, v in settings.get("phase_options", {}).items()}
    for phase, values in (given.get("phase_options") or {}).items():
        phase_options.setdefault(phase, {}).update(values)
    out["phase_options"] = phase_options
    return out


def _table(path: Path, name: str) -> dict[str, Any] | None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # tomllib says where only in its message before Python 3.14
        where = re.search(r" \(at line (\d+), column \d+\)", str(exc))
        what = str(exc).replace(where.group(0), "") if where else str(exc)
        line = int(where.group(1)) if where else None
        raise HdrfixError(f"is not valid TOML: {what}", name, line, hint="fix it") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively (before Python 3.14)
        raise HdrfixError(
            "is not TOML hdrfix can read: arrays or tables nested too deep",
            name,
            hint="flatten the nesting (nothing was changed)",
        ) from None
    if name == "pyproject.toml":
        return data.get("tool", {}).get("hdrfix")
    return data


def _checked(
    table: dict[str, Any], name: str, text: str, phases: Mapping[str, type[Phase]]
) -> dict[str, Any]:
    _check_shape(table, name, text, phases)
    out: dict[str, Any] = {
        key: tuple(value) if PATHS[key] is list else value
        for key, value in table.items()
        if key in PATHS
    }
    out["phase_options"] = {
        key: _phase_values(phases[key], value, name, text)
        for key, value in table.items()
        if key in phases
    }
    return out


def _schema(phases: Mapping[str, type[Phase]]) -> dict[str, Any]:
    """The file's shape; the phase tables' values are checked by each ``Option``, which knows
    their types and ranges."""
    paths = {"type": "array", "items": {"type": "string"}}
    properties: dict[str, Any] = {
        key: {"type": "string"} if kind is str else paths for key, kind in PATHS.items()
    }
    properties.update({phase: {"type": "object"} for phase in phases})
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _check_shape(
    table: dict[str, Any], name: str, text: str, phases: Mapping[str, type[Phase]]
) -> None:
    # imported here: only a repository with a config file pays for jsonschema at start-up
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema(phases))
    errors = sorted(validator.iter_errors(table), key=lambda e: [str(p) for p in e.path])
    if not errors:
        return
    error = errors[0]
    if error.validator == "additionalProperties":
        key = next(k for k in table if k not in PATHS and k not in phases)
        known = ", ".join([*PATHS, *sorted(phases)])
        raise HdrfixError(
            f"unknown hdrfix setting {key!r}", name, _line_of(text, key), hint=f"known: {known}"
        )
    key = str(error.path[0])
    if key in PATHS:
        kind = "a path" if PATHS[key] is str else "a list of paths"
    else:
        kind = "a table of options"
    raise HdrfixError(
        f"{key} must be {kind}, got {table[key]!r}",
        name,
        _line_of(text, key),
        hint="fix the value",
    )


def _phase_values(
    phase: type[Phase], values: dict[str, Any], name: str, text: str
) -> dict[str, Any]:
    declared = {o.name: o for o in phase.options}
    out = {}
    for key, value in values.items():
        line = _line_of(text, key, phase.name)
        option = declared.get(key)
        if option is None:
            known = ", ".join(declared) or "none"
            raise HdrfixError(
                f"{phase.name} has no option {key!r}", name, line, hint=f"its options: {known}"
            )
        out[key] = option.convert(value, f"{phase.name}.{key}", name, line)
    return out


def _line_of(text: str, key: str, table: str | None = None) -> int | None:
    """The first line that sets ``key`` (of the phase ``table``: under its header, or as the
    dotted ``table.key``): TOML parsers do not keep positions."""
    lines = text.splitlines()
    within = table is None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if table is not None and stripped.startswith("["):
            within = stripped in (f"[{table}]", f"[tool.hdrfix.{table}]")
        heads = [f"{key} ", f"{key}="] if within else []
        if table is None:
            heads += [f"[tool.hdrfix.{key}]", f"[{key}]"]
        else:
            heads += [f"{table}.{key} ", f"{table}.{key}="]
        if stripped.startswith(tuple(heads)):
            return number
    return None
