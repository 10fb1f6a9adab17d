"""Discovery reads third-party phases' entry points without importlib.metadata (and its
``email`` parsing), and finds exactly what importlib.metadata finds."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from hdrfix.core.entrypoints import entry_points
from hdrfix.core.plugin import GROUP


def fake_distribution(site: Path, dist: str, text: str) -> None:
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(text)


def test_the_same_entry_points_as_importlib_metadata(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    (first / "my_phase_pkg").mkdir(parents=True)
    (first / "my_phase_pkg" / "__init__.py").write_text("class Holder:\n    Phase = 42\n")
    fake_distribution(
        first,
        "My.Phase_Pkg",
        f"[console_scripts]\nmine = my_phase_pkg:main\n\n[{GROUP}]\n# a comment\n"
        f"  Mine = my_phase_pkg:Holder.Phase  \n\n[other.group]\nMine2 = x:y\n",
    )
    # the same distribution again, later on sys.path: shadowed, as in importlib.metadata
    fake_distribution(second, "my_phase.pkg", f"[{GROUP}]\nother = nowhere:Nothing\n")
    fake_distribution(second, "unrelated", "[console_scripts]\nx = y:z\n")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    ours = sorted((e.name, e.value) for e in entry_points(GROUP))
    theirs = sorted((e.name, e.value) for e in importlib.metadata.entry_points(group=GROUP))
    assert ours == theirs
    assert ("Mine", "my_phase_pkg:Holder.Phase") in ours and (
        "other",
        "nowhere:Nothing",
    ) not in ours
    (mine,) = [e for e in entry_points(GROUP) if e.name == "Mine"]
    assert mine.load() == 42


def test_help_and_list_do_not_import_importlib_metadata():
    code = (
        "import sys\nfrom hdrfix.cli import main\n"
        "for args in (['--help'], ['list']):\n"
        "    try:\n        main(args, standalone_mode=False)\n"
        "    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('importlib.metadata', 'email') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
