"""The conventions users know from ruff, black, alembic and pre-commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import hdrfix

from hdrfix.core.plugin import discover


def test_status_of_named_phases_only(framework):
    assert hdrfix("apply", "phase1", "--repo", framework).code == 0
    out = hdrfix("status", "phase1", "bound", "--repo", framework).out
    states = [line for line in out.splitlines() if not line.startswith((" ", "journal"))]
    assert states == ["bound: pending", "phase1: applied"]
    assert "journal #1: phase1" in out
    unknown = hdrfix("status", "phase9", "--repo", framework)
    assert unknown.code == 2 and "unknown phase 'phase9'" in unknown.err


def test_list_as_json_names_each_phases_options():
    listed = json.loads(hdrfix("list", "--format", "json").out)
    assert [p["phase"] for p in listed] == sorted(discover())
    (phase3,) = [p for p in listed if p["phase"] == "phase3"]
    assert phase3["requires"] == ["phase1"]
    assert [(o["name"], o["type"], o["choices"]) for o in phase3["options"]] == [
        ("loss", "str", ["histogram", "moment", "sparsity", "none"]),
        ("weight", "float", []),
    ]


def test_phase_names_complete_in_the_shell():
    env = {
        **os.environ,
        "_HDRFIX_COMPLETE": "bash_complete",
        "COMP_WORDS": "hdrfix apply pha",
        "COMP_CWORD": "2",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "hdrfix"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.split() == [
        "plain,phase1", "plain,phase2", "plain,phase3",
    ]  # fmt: skip


def test_apply_help_has_examples():
    out = hdrfix("apply", "--help").out
    assert "hdrfix apply phase1 --repo ../framework --dry-run" in out
    assert "hdrfix apply bound --check" in out


def test_quiet_prints_only_what_matters_and_verbose_lists_what_is_done(framework):
    quiet = hdrfix("-q", "apply", "phase1", "--repo", framework)
    assert quiet.code == 0 and quiet.err == "" and quiet.out == ""
    again = hdrfix("-v", "apply", "phase1", "--repo", framework, "--check")
    assert again.code == 0 and "phase1: already applied" in again.err
    done = "  ok configs/colleague_training_config.yaml:21  normalization.log_delta_abs_max: 6.0"
    assert done in again.err
    dry = hdrfix("-q", "apply", "bound", "--repo", framework, "--dry-run")
    assert dry.out.startswith("--- a/") and dry.err == ""  # the diff is the output


def test_status_help_has_no_apply_only_options():
    out = hdrfix("status", "--help").out
    assert "--dry-run" not in out and "--check" not in out and "--with-deps" not in out
    assert "--clamp" in out  # a phase option changes what "applied" means


def test_an_added_key_is_reported_at_its_own_line(framework):
    pending = hdrfix("apply", "bound", "--repo", framework, "--check").err
    where = next(
        line.split()[0] for line in pending.splitlines() if "colleague" in line and "max:" in line
    )
    path, line = where.rsplit(":", 1)
    assert hdrfix("apply", "bound", "--repo", framework).code == 0
    text = (framework / path).read_text(encoding="utf-8").splitlines()
    assert text[int(line) - 1].strip() == "log_output_max: 11.089865684509277"


WIDTHS = """
import os, shutil, sys
from hdrfix.cligroup import help_width
for columns in (None, "0", "abc", "30", "60", "79", "81", "200"):
    if columns is None:
        os.environ.pop("COLUMNS", None)
    else:
        os.environ["COLUMNS"] = columns
    size = shutil.get_terminal_size().columns
    clicks, clicks_wide = (max(min(size, most) - 2, 50) for most in (80, 120))
    print(columns, help_width(None), clicks, help_width(120), clicks_wide)
"""


def test_help_is_as_wide_as_click_would_make_it():
    """hdrfix works out click's help width itself, to spare importing shutil."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", WIDTHS], capture_output=True, text=True, check=True)
    rows = [line.split() for line in out.stdout.splitlines()]
    assert len(rows) == 8
    for columns, ours, clicks, ours_wide, clicks_wide in rows:
        assert (ours, ours_wide) == (clicks, clicks_wide), columns
    assert [r[1] for r in rows if r[0] == "200"] == ["78"]
    assert [r[3] for r in rows if r[0] == "60"] == ["58"]


RUNNER = """
import sys
from click.testing import CliRunner
from hdrfix.cli import main
result = CliRunner().invoke(main, sys.argv[2:], prog_name="hdrfix", terminal_width=int(sys.argv[1]))
print(result.output, end="")
"""


def test_help_wraps_at_the_width_of_the_terminal():
    """What a terminal of 60 columns shows is what click lays out at its width for 60 (58)."""
    import os
    import subprocess
    import sys

    def run(*args: str, **env: str) -> str:
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env={**os.environ, **env}
        ).stdout

    for args in (["--help"], ["apply", "--help"]):
        shown = run("-m", "hdrfix", *args, COLUMNS="60")
        assert shown == run("-c", RUNNER, "58", *args)
        assert shown != run("-c", RUNNER, "78", *args)


EXIT_PROBE = """
import atexit, sys


class Witness:
    def __del__(self):
        sys.stderr.write("torn down\\n")


witness = Witness()
if sys.argv[1] == "with-handler":
    atexit.register(lambda: sys.stderr.write("handler ran\\n"))
if sys.argv[1] == "with-thread":
    import threading, time

    def late():
        time.sleep(0.2)
        sys.stderr.write("thread done\\n")

    threading.Thread(target=late).start()
sys.argv = ["hdrfix", *sys.argv[2:]]
from hdrfix.cli import run

run()
"""


def _ended(mode: str, *args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, mode, *args], capture_output=True, text=True
    )


def test_a_short_lived_command_ends_without_tearing_the_interpreter_down(framework):
    """Freeing every syntax tree one by one at exit was 15 ms of a 0.2 s --check."""
    done = _ended("plain", "status", "--repo", str(framework))
    assert done.returncode == 0, done.stderr
    assert "phase1" in done.stdout and done.stdout.endswith("\n")
    assert "torn down" not in done.stderr
    bad = _ended("plain", "status", "--repo", str(framework / "nowhere"))
    assert bad.returncode == 2
    assert bad.stderr.startswith("hdrfix: error:") and "torn down" not in bad.stderr


def test_an_atexit_handler_or_a_long_command_keeps_the_normal_exit(framework):
    done = _ended("with-handler", "status", "--repo", str(framework))
    assert done.returncode == 0
    assert "handler ran" in done.stderr and "torn down" in done.stderr
    helped = _ended("plain", "--help")
    assert helped.returncode == 0 and "torn down" in helped.stderr
    waited = _ended("with-thread", "status", "--repo", str(framework))
    assert waited.returncode == 0 and "thread done" in waited.stderr


@pytest.mark.parametrize("fd", [1, 2])
def test_a_closed_standard_stream_exits_as_before(framework, fd):
    """A closed stdout or stderr is None in Python: nothing to flush, the normal exit says."""
    import os
    import subprocess
    import sys

    def run(*args: str) -> int:
        return subprocess.run(
            [sys.executable, "-m", "hdrfix", *args],
            preexec_fn=lambda: os.close(fd),
            stdout=subprocess.DEVNULL if fd == 2 else None,
            stderr=subprocess.DEVNULL if fd == 1 else None,
        ).returncode

    assert run("status", "--repo", str(framework)) == 0
    assert run("apply", "nope", "--repo", str(framework)) == 2
