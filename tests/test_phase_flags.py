"""Phases own their options: the CLI makes flags of what each declares, namespaced on a clash;
and edits from one run compose, or are refused with a message, never last-writer-wins."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ROOT, hdrfix, plugin_dir, snapshot

from hdrfix.core.plugin import discover

TRAINER = "train/patch_training_framework.py"

# A third-party phase whose options clash with phase3's --weight and the common --config.
CLASHING = """
    plan.done('README.md', None, f"weight={options.get('weight')} config={options.get('config')}")
"""


def clashing_plugins(tmp_path: Path) -> Path:
    folder = plugin_dir(tmp_path / "plugins", "extra", CLASHING)
    text = (folder / "extra.py").read_text()
    text = text.replace("from hdrfix.core.plugin import", "from hdrfix.core.plugin import Option,")
    text = text.replace(
        "    requires = ()\n",
        "    requires = ()\n"
        "    options = (Option('weight', 'how heavy', float), Option('config', 'which', str))\n",
    )
    (folder / "extra.py").write_text(text)
    return folder


def items(result) -> list[str]:
    return [i["what"] for p in json.loads(result.out)["phases"] for i in p["items"]]


def test_apply_help_lists_each_phase_with_its_flags():
    out = hdrfix("apply", "--help").out
    assert "--clamp FLOAT" in out and "phase1: bound for |delta_log| (default 8.0)." in out
    assert "--loss [histogram|moment|sparsity|none]" in out
    installed = out[out.index("Installed phases") :].splitlines()[1:]
    assert [line.split()[0] for line in installed] == sorted(discover())
    (phase3,) = [line for line in installed if line.split()[0] == "phase3"]
    assert phase3.split(None, 1)[1] == "--loss, --weight"


def test_a_clashing_option_is_namespaced_and_reaches_its_own_phase(framework, tmp_path):
    plugins = clashing_plugins(tmp_path)
    help_text = hdrfix("--plugins", plugins, "status", "--help").out
    assert "--extra-weight FLOAT" in help_text and "--phase3-weight FLOAT" in help_text
    assert "--extra-config TEXT" in help_text and "\n  --weight" not in help_text
    result = hdrfix(
        "--plugins", plugins, "status", "--repo", framework, "--format", "json",
        "--extra-weight", "2.5", "--extra-config", "mine", "--phase3-weight", "0.25",
    )  # fmt: skip
    assert "weight=2.5 config=mine" in items(result)


def test_set_is_typed_by_the_phase_and_names_what_exists(framework, tmp_path):
    plugins = clashing_plugins(tmp_path)
    base = ("--plugins", plugins, "status", "--repo", framework, "--format", "json")
    assert "weight=0.5 config=None" in items(hdrfix(*base, "--set", "extra.weight=0.5"))
    wrong_type = hdrfix(*base, "--set", "extra.weight=heavy")
    assert (
        wrong_type.code == 2
        and "--set extra.weight=heavy must be a number, got 'heavy'" in wrong_type.err
    )
    no_phase = hdrfix(*base, "--set", "config=x")  # it used to be read one letter at a time
    assert no_phase.code == 2 and "--set takes PHASE.KEY=VALUE, got 'config=x'" in no_phase.err
    unknown = hdrfix(*base, "--set", "phase1.clmap=6")
    assert unknown.code == 2
    assert "known: bound.ceiling, extra.weight, extra.config, phase1.clamp" in unknown.err


def test_the_built_in_folder_can_be_passed_as_plugins(framework):
    """``--plugins hdrfix_plugins/`` names the installed built-ins again: the same phases."""
    result = hdrfix("--plugins", ROOT / "hdrfix_plugins", "list")
    assert result.code == 0
    assert [line.split()[0] for line in result.out.splitlines()[1:]] == sorted(discover())


def test_two_phases_editing_one_function_in_one_run_compose(framework):
    assert hdrfix("apply", "phase1", "bound", "--repo", framework).code == 0
    text = (framework / TRAINER).read_text()
    assert text.count("torch.clamp(delta_log, min=-8.0, max=8.0)") == 2
    assert text.count("torch.clamp(Ln_hat, max=self.log_output_max)") == 2


def test_two_edits_of_one_function_by_one_phase_are_refused(framework, tmp_path):
    twice = """
        pyfile = repo.python('train/patch_training_framework.py')
        ref = pyfile.function('PatchFrameInterpolationTrainer.training_step')
        plan.todo('train/patch_training_framework.py', ref.line, 'twice')
        plan.function_edits.append(('train/patch_training_framework.py', ref, pyfile.cst(ref)))
        plan.function_edits.append(('train/patch_training_framework.py', ref, pyfile.cst(ref)))
    """
    plugins = plugin_dir(tmp_path / "plugins", "twice", twice)
    before = snapshot(framework)
    result = hdrfix("--plugins", plugins, "apply", "twice", "--repo", framework)
    assert result.code == 2
    assert "twice planned two separate edits of PatchFrameInterpolationTrainer.training_step" in (
        result.err
    )
    assert snapshot(framework) == before


def test_a_whole_text_edit_of_python_is_refused(framework, tmp_path):
    whole = f"""
        plan.todo({TRAINER!r}, None, 'whole')
        plan.text_edits[{TRAINER!r}] = repo.text({TRAINER!r}) + '# mine\\n'
    """
    plugins = plugin_dir(tmp_path / "plugins", "whole", whole)
    before = snapshot(framework)
    result = hdrfix("--plugins", plugins, "apply", "phase1", "whole", "--repo", framework)
    assert result.code == 2 and "whole planned a whole-text edit of a Python file" in result.err
    assert snapshot(framework) == before


def test_a_phase_copied_into_the_built_in_package_is_found_without_reinstalling(
    tmp_path, monkeypatch
):
    """The built-ins are found by listing their package, not only by installed entry points."""
    from hdrfix.core import plugin

    package = tmp_path / "builtin_copy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "newphase.py").write_text(
        (ROOT / "hdrfix_plugins/bound.py")
        .read_text()
        .replace('name = "bound"', 'name = "newphase"')
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugin, "BUILT_IN", "builtin_copy")
    listed = hdrfix("list").out
    assert "newphase  -         clamp Ln_hat" in listed and "bound" in listed
