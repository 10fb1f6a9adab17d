"""The contract every phase keeps, built-in or third-party, checked on every registered phase.

For each phase and each target it applies to (the fixture, and the variants where that phase
meets a shape of its own), once the phases it requires are applied:

1. ``--dry-run`` writes nothing, exits 0, and prints a unified diff that is exactly the apply:
   it names the files the apply writes, and applied to the old text it gives the new one;
2. ``--check`` exits 1 before the apply and 0 after it;
3. a second apply changes no byte (the journal included);
4. ``revert PHASE`` gives back every file byte for byte (``.hdrfix/`` aside), and the state
   seen before;
5. status is read from the files: with ``.hdrfix/`` deleted after an apply it still says
   "applied", and with the old files copied back (as ``git checkout`` would) it says what it
   said before the apply.

Each target says what it expects: it applies (the default), or the phase refuses it with a
message the target names (``refused``). A target that stops applying, or that a phase stops
refusing, fails: no case is skipped. One test runs all the checks of a case in
sequence, so a case costs one copy of the target and a dozen in-process CLI calls.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FRAMEWORK, ROOT, hdrfix, snapshot
from fielddata import INFERENCE, NETWORK, apply_diff, diff_files, states

from hdrfix.core.plugin import discover

EXAMPLE = ROOT / "examples" / "hdrfix-eps-phase" / "hdrfix_eps_phase"
INSTALLED = discover()  # hdrfix's own phases and any third-party one installed with it
BUILT_IN = {n for n, cls in INSTALLED.items() if cls.__module__.startswith("hdrfix_plugins.")}
# Third-party phases: the installed ones, and the example's (via --plugins unless installed).
THIRD_PARTY = dict.fromkeys(set(INSTALLED) - BUILT_IN, ())
if not any(cls.__module__.startswith("hdrfix_eps_phase") for cls in INSTALLED.values()):
    THIRD_PARTY |= dict.fromkeys(set(discover((EXAMPLE,))) - set(INSTALLED), ("--plugins", EXAMPLE))
COPIED = "boundcopy"  # hdrfix_plugins/bound.py copied under a new name, as a newcomer would


def with_network(repo: Path) -> None:
    """Variants with no network of their own import the fixture's: give them a copy."""
    target = repo / NETWORK
    for folder in (repo / "src", repo / "src/npu", repo / "src/npu/networks", target.parent):
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").touch()
    shutil.copy(FRAMEWORK / NETWORK, target)


@dataclass(frozen=True)
class Target:
    name: str  # "framework" or a folder of fixtures/variants
    options: tuple[str, ...] = ()  # for apply and status; "{repo}" stands for the copy
    prepare: Callable[[Path], None] | None = None
    refused: str | None = None  # the phase refuses this target with a message holding this

    @property
    def id(self) -> str:
        return self.name + (
            "+" + "+".join(o.rsplit("/", 1)[-1] for o in self.options if not o.startswith("--"))
            if self.options
            else ""
        )


# Where each phase meets shapes of its own (fixtures/variants/README.md). The fixture is first
# in every list and a phase not named here (a third-party one) gets DEFAULT.
FIXTURE = Target("framework")
CONFIG_SHAPES = [
    Target("crlf"),
    Target("flow_yaml"),
    Target("multi_config"),
    Target("nested_normalization"),
]
DEFAULT = [FIXTURE, *CONFIG_SHAPES]
TARGETS: dict[str, list[Target]] = {
    "phase1": [
        FIXTURE,
        *CONFIG_SHAPES,
        Target("supervision_off"),
        Target("hand_clamped"),  # partly applied before
        Target("one_line_if"),
        Target("multiline"),
        Target("mode_a_only"),
        Target("helper_method"),
        Target("field_helper_tuple"),
        Target("no_default_path"),
        Target("two_frameworks", ("--framework", "{repo}/trainers/b.py")),
        Target("inference_module", ("--include", "{repo}/src/npu/deploy/export.py")),
    ],
    "phase2": [
        # the fixture's inference module reconstructs from the network's output too: phase2
        # refuses (exit 2) until it is included or excluded (test_bad_input)
        Target("framework", ("--exclude", "{repo}/" + INFERENCE)),
        Target("net_tuple_return"),
        Target("net_interpolate"),
        Target("net_two_returns"),
        Target("net_renamed"),
        Target(
            "net_two_classes", ("--network", "{repo}/src/npu/networks/patch/patch_network_small.py")
        ),
        Target("no_scale", prepare=with_network),
        Target("one_line_if", prepare=with_network),
        Target("crlf", prepare=with_network),
        Target("field_helper_tuple", prepare=with_network),
    ],
    "phase3": [
        FIXTURE,
        *CONFIG_SHAPES,
        Target("supervision_off"),
        Target("exp_inline"),
        Target("multiline"),
        Target("no_default_path"),
        Target("field_helper_tuple"),
        Target("helper_method", refused="has no log-domain reconstruction of its own"),
    ],
    "bound": [
        FIXTURE,
        *CONFIG_SHAPES,
        Target("exp_inline"),
        Target("helper_method"),
        Target("multiline"),
        Target("field_helper_tuple"),
        Target(
            "inference_module",
            (
                "--include",
                "{repo}/src/npu/deploy/export.py",
                "--include",
                "{repo}/tools/inspect_residuals.py",
            ),
        ),
    ],
    "eps4": [*DEFAULT, Target("syntax_error")],  # config only: a broken trainer is no matter
    COPIED: [FIXTURE, Target("exp_inline")],
}


def cases() -> list:
    phases = dict.fromkeys(sorted(BUILT_IN), ()) | THIRD_PARTY | {COPIED: ()}
    return [
        pytest.param(phase, plugins, target, id=f"{phase}-{target.id}")
        for phase, plugins in phases.items()
        for target in TARGETS.get(phase, DEFAULT)
    ]


def test_every_phase_has_the_fixture_case() -> None:
    run = {(p.values[0], p.values[2].name) for p in cases()}
    assert {phase for phase, target in run if target == "framework"} == (
        set(BUILT_IN) | set(THIRD_PARTY) | {COPIED}
    )
    assert {"phase1", "phase2", "phase3", "bound", "eps4"} <= set(BUILT_IN) | set(THIRD_PARTY)


def copied_plugin(folder: Path) -> Path:
    """bound.py copied as a newcomer starts a phase: same code, a name of its own."""
    folder.mkdir()
    source = (ROOT / "hdrfix_plugins" / "bound.py").read_text(encoding="utf-8")
    assert source.count('    name = "bound"\n') == 1
    (folder / f"{COPIED}.py").write_text(
        source.replace('    name = "bound"\n', f'    name = "{COPIED}"\n'), encoding="utf-8"
    )
    return folder


def make_target(target: Target, tmp_path: Path) -> Path:
    from conftest import VARIANTS, copy_tree

    if target.name == "framework":
        repo = copy_tree(FRAMEWORK, tmp_path / "framework")
    else:
        source = VARIANTS / target.name
        repo = tmp_path / target.name
        own_trainer = any(
            "def training_step" in p.read_text(errors="replace") for p in source.rglob("*.py")
        )
        if not own_trainer:
            copy_tree(VARIANTS / "_shared", repo)
        shutil.copytree(
            source, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    if target.prepare:
        target.prepare(repo)
    return repo


def files(tree: dict[str, bytes]) -> dict[str, bytes]:
    return {rel: data for rel, data in tree.items() if not rel.startswith(".hdrfix/")}


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def restore(repo: Path, tree: dict[str, bytes]) -> None:
    """Put the files back as they were, as ``git checkout`` would (``.hdrfix/`` aside)."""
    for rel in files(snapshot(repo)):
        if rel not in tree:
            (repo / rel).unlink()
    for rel, data in files(tree).items():
        path = repo / rel
        if not path.exists() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


@pytest.mark.parametrize(("phase", "plugins", "target"), cases())
def test_contract(phase: str, plugins: tuple, target: Target, tmp_path: Path) -> None:
    if phase == COPIED:
        plugins = ("--plugins", copied_plugin(tmp_path / "plugins"))
    repo = make_target(target, tmp_path / "repo")
    options = [o.replace("{repo}", str(repo)) for o in target.options]

    def cli(*args: str | Path):
        return hdrfix(*plugins, *args)

    def apply(*args: str):
        return cli("apply", phase, "--repo", repo, *options, *args)

    phases = discover((plugins[1],)) if plugins else INSTALLED
    for required in phases[phase].requires:
        first = cli("apply", required, "--repo", repo, *options)
        assert first.code == 0, first.err
    check = apply("--check", "--format", "json")
    if target.refused is not None:
        assert check.code == 2, f"{phase} on {target.id} was to be refused: {check.out}"
        assert target.refused in json.loads(check.err)["error"]
        return
    assert check.code == 1, f"{phase} on {target.id}: --check exits {check.code}: {check.err}"
    (state_before,) = [p["state"] for p in json.loads(check.out)["phases"] if p["phase"] == phase]
    assert state_before in ("pending", "partial")
    before = snapshot(repo)

    # 1. a dry run writes nothing (what it prints is compared with the apply at the end)
    dry = apply("--dry-run")
    assert dry.code == 0, dry.err
    assert snapshot(repo) == before

    # 2. --check: 1 (above), then 0 once applied
    applied_run = apply()
    assert applied_run.code == 0, applied_run.err
    applied = snapshot(repo)
    changed = sorted(rel for rel in files(applied) if applied[rel] != before.get(rel))
    assert changed, f"{phase} was {state_before} but the apply changed nothing"
    assert sorted(files(before)) == sorted(files(applied)), "an apply adds or removes no file"
    assert apply("--check").code == 0

    # 3. a second apply changes nothing
    again = apply()
    assert again.code == 0, again.err
    assert snapshot(repo) == applied

    # 4. revert gives back the files byte for byte
    reverted = cli("revert", phase, "--repo", repo)
    assert reverted.code == 0, reverted.err
    assert files(snapshot(repo)) == files(before)

    # 5. status reads the files, not the journal: the applied files with no .hdrfix/ ...
    restore(repo, applied)
    shutil.rmtree(repo / ".hdrfix")
    assert states(repo, *options, plugins=plugins, only=(phase,))[phase] == "applied"
    # ... and the old files put back over them, as `git checkout` would
    restore(repo, before)
    assert files(snapshot(repo)) == files(before)
    assert states(repo, *options, plugins=plugins, only=(phase,))[phase] == state_before

    # 1. (end) the dry run's diff is the apply: the same files, and it turns old into new
    assert sorted(diff_files(dry.out)) == changed
    for rel in changed:
        old, new = text(before[rel]), text(applied[rel])
        assert apply_diff(old, dry.out, rel) == new.splitlines()
