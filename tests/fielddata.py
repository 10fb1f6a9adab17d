"""Test data shared by the test modules: where the fixture's files are, and the helpers that
read what a phase did to them.

- The paths (``CONFIG``, ``TRAINER``, ...) are relative to a copy of ``fixtures/framework`` (or
  of a variant laid over ``fixtures/variants/_shared``), as the CLI's output names them.
- :func:`check_transformed` asserts on what an edit did to a file, parsed: for Python, which
  statements (as ``ast.unparse`` writes them, so formatting and comments do not count) were
  inserted, removed or replaced, in which function and after which statement; for YAML, which
  keys changed from what to what. Nothing else may differ. A test about formatting (CRLF, a
  comment kept, a flow mapping on one line) checks the bytes itself.
- :func:`diff_of` and :func:`apply_diff` read the unified diff that ``--dry-run`` prints.
"""

from __future__ import annotations

import ast
import difflib
import json
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG = "configs/colleague_training_config.yaml"
PRESET = "configs/presets/fast_test.yaml"
TRAINER = "train/patch_training_framework.py"
NETWORK = "src/npu/networks/patch/patch_network.py"
INFERENCE = "src/npu/networks/patch_inpainting.py"
TOOLS = "tools/diagnose_overflow.py"
JOURNAL = ".hdrfix/journal.json"

CLAMP = "delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)"  # phase1, at every site
LOG_MAX = "11.089865684509277"  # bound: log_ceiling(65504), exp of it in float32 is 65503.945
HALF_MAX = 65504.0


def states(
    repo: Path, *options: str | Path, plugins: tuple = (), only: tuple[str, ...] = ()
) -> dict[str, str]:
    """Each phase's state (or ``only`` these phases') from ``status --format json``;
    "error: ..." for a phase that failed.

    ``options`` are status's (``--exclude PATH``); ``plugins`` go before it (``--plugins DIR``).
    """
    from conftest import hdrfix

    result = hdrfix(*plugins, "status", *only, "--repo", repo, *options, "--format", "json")
    assert result.code in (0, 2), result.err  # 2: a phase has an error (shown as such)
    return {
        p["phase"]: f"error: {p['error']}" if p.get("error") else p["state"]
        for p in json.loads(result.out)["phases"]
    }


def train_step(model: Any, optimiser: Any, batch: dict, step: int) -> dict:
    """One optimisation step of a fixture trainer on ``batch``, as Lightning runs it: the
    training step's output (its loss already backpropagated and applied)."""
    out = model.training_step(batch, step)
    optimiser.zero_grad()
    out["loss"].backward()
    optimiser.step()
    return out


# -- the unified diff of --dry-run ------------------------------------------------------------


def diff_files(out: str) -> list[str]:
    """The files a unified diff names, in order."""
    return [line[len("+++ b/") :] for line in out.splitlines() if line.startswith("+++ b/")]


def diff_of(out: str, rel: str) -> tuple[list[str], list[str]]:
    """(added, removed) lines of one file's section of a unified diff."""
    lines = _section(out, rel)
    return (
        [line[1:] for line in lines if line.startswith("+")],
        [line[1:] for line in lines if line.startswith("-")],
    )


def _section(out: str, rel: str) -> list[str]:
    head = f"--- a/{rel}\n+++ b/{rel}\n"
    assert out.count(head) == 1, f"{rel} has no section of its own in the diff"
    return out.split(head)[1].split("\n--- a/")[0].splitlines()


def apply_diff(before: str, out: str, rel: str) -> list[str]:
    """The lines of ``before`` with ``rel``'s section of the diff ``out`` applied, each hunk at
    the line its header names (its context and removed lines must be there). Line endings are
    not compared: the diff is printed with ``\\n``."""
    old = before.splitlines()
    new: list[str] = []
    at = 0  # next line of ``old`` to copy
    for line in _section(out, rel):
        if line.startswith("@@"):
            first, _, count = line.split()[1][1:].partition(",")
            # "-5,3": lines 5-7 (index 4 on); "-5,0": nothing, inserted after line 5
            start = int(first) - (0 if count == "0" else 1)
            assert start >= at, f"{rel}: hunks out of order at {line!r}"
            new.extend(old[at:start])
            at = start
        elif line.startswith("\\"):
            continue  # "\ No newline at end of file"
        elif line[:1] in (" ", "-"):
            assert at < len(old) and old[at] == line[1:], f"{rel}:{at + 1}: {line!r}"
            if line[0] == " ":
                new.append(old[at])
            at += 1
        elif line.startswith("+"):
            new.append(line[1:])
        else:
            assert line == "", f"{rel}: not a diff line: {line!r}"
    return new + old[at:]


# -- what an edit did, parsed -----------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """In ``scope`` (``"Class.method"``, ``"function"``, ``"Class"`` for a class body's other
    statements, ``"<module>"``): right after the statement ``after`` (None: at the start),
    ``removed`` statements were taken out and ``added`` ones put in. Statements are lines of
    ``ast.unparse`` of the scope, dedented to its body: nesting shows as 4 spaces a level, an
    ``if``/``else`` as its own line (``"if x > 0:"``, ``"else:"``)."""

    scope: str
    after: str | None
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()


MISSING = "<missing>"  # a YAML key that is not there, before or after


def edit(
    scope: str, after: str | None, *, removed: Iterable[str] = (), added: Iterable[str] = ()
) -> Edit:
    """An :class:`Edit`, its statements written as in the source: each is unparsed, so that
    ``(a * b) * c`` reads ``a * b * c`` as ``ast.unparse`` has it (indentation is kept)."""
    return Edit(
        scope,
        None if after is None else _unparsed(after),
        tuple(map(_unparsed, removed)),
        tuple(map(_unparsed, added)),
    )


def _unparsed(line: str) -> str:
    stripped = line.lstrip(" ")
    try:
        return line[: len(line) - len(stripped)] + ast.unparse(ast.parse(stripped))
    except SyntaxError:  # a compound statement's header: "if x > 0:", "else:"
        return line


def check_transformed(before: str, after: str, path: str, expected: Any) -> None:
    """Assert that ``after`` is ``before`` transformed as ``expected`` says, and nothing else.

    - ``expected`` a ``str``: ``after`` is exactly that text.
    - a ``.py`` path: ``expected`` is a list of :class:`Edit` (see :func:`edit`), the whole
      structural difference, in file order; both texts must parse.
    - a ``.yaml``/``.yml`` path: ``expected`` maps dotted keys (``"normalization.log_epsilon"``,
      ``"1:normalization.x"`` in the second document) to ``(old, new)``, :data:`MISSING` for
      absent; all other keys hold the same values. Both texts must load.
    """
    if isinstance(expected, str):
        assert after == expected, "\n".join(
            difflib.unified_diff(
                expected.splitlines(), after.splitlines(), "expected", "got", lineterm=""
            )
        )
    elif path.endswith(".py"):
        assert py_changes(before, after) == list(expected)
    elif path.endswith((".yaml", ".yml")):
        assert yaml_changes(before, after) == dict(expected)
    else:
        raise AssertionError(f"{path}: say the expected text")


def check_file(
    before: Mapping[str, bytes], after: Mapping[str, bytes], rel: str, expected: Any
) -> None:
    """:func:`check_transformed` on one file of two snapshots (``conftest.snapshot``)."""
    check_transformed(before[rel].decode(), after[rel].decode(), rel, expected)


def changed_files(before: Mapping[str, bytes], after: Mapping[str, bytes]) -> set[str]:
    """The files that differ between two snapshots, hdrfix's own ``.hdrfix/`` folder aside."""
    changed = {rel for rel in after if after[rel] != before.get(rel)}
    return {rel for rel in changed if not rel.startswith(".hdrfix/")}


def applied(
    repo: Path, phase: str, *options: str | Path
) -> tuple[Any, dict[str, bytes], dict[str, bytes]]:
    """``hdrfix apply PHASE --repo REPO OPTIONS``, which must succeed: its result, and the
    repository's files (``conftest.snapshot``) before and after it."""
    from conftest import hdrfix, snapshot

    before = snapshot(repo)
    result = hdrfix("apply", phase, "--repo", repo, *options)
    assert result.code == 0, result.err
    return result, before, snapshot(repo)


def py_changes(before: str, after: str) -> list[Edit]:
    """The statement-level difference between two Python sources, scope by scope."""
    old, new = _scopes(before), _scopes(after)
    changes: list[Edit] = []
    for scope in list(old) + [s for s in new if s not in old]:
        a, b = old.get(scope, []), new.get(scope, [])
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op != "equal":
                changes.append(
                    Edit(scope, a[i1 - 1] if i1 else None, tuple(a[i1:i2]), tuple(b[j1:j2]))
                )
    return changes


def _scopes(source: str) -> dict[str, list[str]]:
    """Each function's (and class body's, and the module's) statements, unparsed."""
    scopes: dict[str, list[str]] = {}

    def walk(body: list[ast.stmt], prefix: str, scope: str) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + stmt.name
                # the signature and decorators count as the function's first lines
                header = ast.unparse(stmt).splitlines()[: len(stmt.decorator_list) + 1]
                text = textwrap.dedent("\n".join(ast.unparse(s) for s in stmt.body))
                scopes[name] = header + text.splitlines()
            elif isinstance(stmt, ast.ClassDef):
                scopes.setdefault(prefix + stmt.name, [])
                walk(stmt.body, f"{prefix}{stmt.name}.", prefix + stmt.name)
            else:
                scopes.setdefault(scope, []).extend(ast.unparse(stmt).splitlines())

    walk(ast.parse(source).body, "", "<module>")
    return scopes


def yaml_changes(before: str, after: str) -> dict[str, tuple[Any, Any]]:
    """The keys whose values differ between two YAML texts: ``{key: (old, new)}``."""
    old, new = _flat_yaml(before), _flat_yaml(after)
    return {
        key: (old.get(key, MISSING), new.get(key, MISSING))
        for key in list(old) + [k for k in new if k not in old]
        if old.get(key, MISSING) != new.get(key, MISSING)
    }


def _flat_yaml(text: str) -> dict[str, Any]:
    from ruamel.yaml import YAML

    flat: dict[str, Any] = {}

    def walk(node: Any, key: str, doc: str) -> None:
        if isinstance(node, Mapping) and node:
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k), doc)
        else:
            flat[doc + key] = [_plain(v) for v in node] if isinstance(node, list) else node

    for i, doc in enumerate(YAML(typ="safe", pure=True).load_all(text)):
        walk(doc, "", f"{i}:" if i else "")  # a later document's keys are named with its index
    return flat


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value
