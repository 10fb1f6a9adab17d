"""The README's tour, run as printed: every line its abridged output shows comes out of the
command, in that order (lines the README leaves out are marked ``...`` there)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "What it looks like on the fixture (abridged):"
# what differs between any two runs: the clock
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}")


def tour() -> list[tuple[str, list[str]]]:
    """(command, the output lines the README shows for it) for each ``$ `` line of the block."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index(HEADING) :].split("```text\n", 1)[1].split("\n```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps and line.strip() not in ("...", ""):
            steps[-1][1].append(line)
    return steps


def in_order(shown: list[str], printed: list[str]) -> str | None:
    """The first shown line that does not come out after the one before it, or None."""
    rest = iter(printed)
    for line in shown:
        want = TIME.sub("<time>", line.rstrip())
        if not any(TIME.sub("<time>", got.rstrip()) == want for got in rest):
            return line
    return None


def test_the_tour_has_the_commands_a_user_runs_first():
    commands = [command for command, _ in tour()]
    assert commands[0] == "hdrfix list"
    for needed in ("hdrfix apply phase1 --dry-run", "hdrfix apply phase1", "hdrfix revert phase1"):
        assert needed in commands
    assert all(shown for _, shown in tour()), "every command shows some output"


def test_in_order_needs_every_shown_line_in_order():
    assert in_order(["a", "c"], ["a", "b", "c"]) is None
    assert in_order(["c", "a"], ["a", "b", "c"]) == "a"
    assert in_order(["x"], ["a"]) == "x"


def test_the_tour_prints_what_the_readme_shows(repo: Path, tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "hdrfix"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m hdrfix "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "200"}
    for command, shown in tour():
        script = f"exec 2>&1; {command}"
        done = subprocess.run(
            ["bash", "-c", script], cwd=repo, env=env, capture_output=True, text=True
        )
        printed = done.stdout.splitlines()
        missing = in_order(shown, printed)
        if missing is not None:
            shows = f"README shows {missing!r}, not printed in order"
            pytest.fail(f"$ {command}\n{shows}:\n{done.stdout}")
