"""A phase's options are its own: a copy of ``bound`` installed as a new phase declares
``ceiling`` too, and neither phase changes: ``--bound-ceiling`` and ``--mine-ceiling`` both
exist, only the short alias ``--ceiling`` goes, and bound's own error text stays the same."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT, hdrfix


def copied_bound(tmp_path: Path) -> Path:
    """``hdrfix_plugins/bound.py`` under the phase name ``mine``, in a ``--plugins`` folder;
    the name is changed in the class body found by ``ast``, not by matching text."""
    source = (ROOT / "hdrfix_plugins" / "bound.py").read_text("utf-8")
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    (assign,) = [
        node
        for cls in tree.body
        if isinstance(cls, ast.ClassDef) and cls.name == "Bound"
        for node in cls.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["name"]
    ]
    row = assign.lineno - 1
    line = lines[row]
    lines[row] = line[: assign.value.col_offset] + '"mine"' + line[assign.value.end_col_offset :]
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "mine.py").write_text("".join(lines), "utf-8")
    return folder


def test_short_flag_is_an_alias_of_the_namespaced_one(framework):
    help_text = hdrfix("apply", "--help").out
    assert "--ceiling FLOAT" in help_text and "--bound-ceiling FLOAT" in help_text
    same = hdrfix("apply", "bound", "--repo", framework, "--bound-ceiling", "0.5")
    assert same.code == 2 and "--bound-ceiling must be a finite number above 1" in same.err
    both = hdrfix("apply", "bound", "--repo", framework, "--ceiling", "2", "--bound-ceiling", "3")
    assert both.code == 2
    assert "--ceiling and --bound-ceiling are the same option: give one of them" in both.err


def test_a_copied_phase_leaves_the_original_s_options_alone(framework, tmp_path):
    plugins = copied_bound(tmp_path)
    listed = hdrfix("--plugins", plugins, "list").out
    assert [line.split()[0] for line in listed.splitlines()[1:]][:2] == ["bound", "mine"]
    help_text = hdrfix("--plugins", plugins, "apply", "--help").out
    assert "--bound-ceiling FLOAT" in help_text and "--mine-ceiling FLOAT" in help_text
    assert "\n  --ceiling" not in help_text  # two phases have it: no alias
    base = ("--plugins", plugins, "apply", "bound", "--repo", framework)
    bad = hdrfix(*base, "--bound-ceiling", "0.5")
    assert bad.code == 2 and "--bound-ceiling must be a finite number above 1" in bad.err
    mine = hdrfix("--plugins", plugins, "apply", "mine", "--repo", framework, "--mine-ceiling", "0")
    assert mine.code == 2 and "--mine-ceiling must be a finite number above 1" in mine.err
    by_set = hdrfix(*base, "--set", "mine.ceiling=0.5")
    assert by_set.code == 2
    assert "--set mine.ceiling=0.5 must be a finite number above 1" in by_set.err
