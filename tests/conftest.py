from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

# One torch thread: the tests' tensors are tiny, and on a shared 2-core runner extra threads only
# contend (measured here: 24 steps took 54 s with 2 threads, 1 s with 1).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# hdrfix keeps the key that seals its commit records in the user's state folder: not the
# tester's own, for the suite
os.environ.setdefault("HDRFIX_STATE_HOME", tempfile.mkdtemp(prefix="hdrfix-state-"))
# validate and trial without --report write to the user's cache: one of this process's own
# (each xdist worker imports this file: its own folders), never the tester's ~/.cache
os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="hdrfix-cache-"))
# every tree hdrfix builds from an edited text's tail is checked against a whole parse, in every
# test that edits Python (hdrfix.lang.retree)
os.environ.setdefault("HDRFIX_CHECK_RETREE", "1")

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORK = ROOT / "fixtures" / "framework"
VARIANTS = ROOT / "fixtures" / "variants"


@dataclass
class Result:
    code: int
    out: str
    err: str


def hdrfix(*args: str | Path) -> Result:
    """Run the CLI in-process, as a user would type it."""
    from hdrfix.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


def built_in_phases() -> tuple[str, ...]:
    """The phases hdrfix ships, found the way hdrfix finds them (a module of
    ``hdrfix_plugins``): a test spanning every phase takes them from here, so a phase added
    there is covered, and breaks no test, without editing the test."""
    from hdrfix.core.plugin import discover

    found = discover()
    return tuple(sorted(n for n, c in found.items() if c.__module__.startswith("hdrfix_plugins.")))


def plugin_dir(
    folder: Path,
    name: str,
    plan_body: str,
    requires: tuple[str, ...] = (),
    writes: tuple[str, ...] = (".py", ".yaml", ".yml"),
) -> Path:
    """A folder for ``--plugins`` holding one third-party phase ``name`` whose ``plan`` runs
    ``plan_body`` (with ``repo``, ``options`` and a fresh ``plan``) and returns ``plan``;
    ``writes``: the suffixes of the files it declares it writes."""
    import textwrap

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(
        "from hdrfix.core.plugin import Phase, PhasePlan\n\n\n"
        "class TestPhase(Phase):\n"
        f"    name = {name!r}\n    summary = 'a test phase'\n    requires = {requires!r}\n"
        f"    writes = {writes!r}\n\n"
        "    def plan(self, repo, options):\n"
        "        plan = PhasePlan(self.name)\n"
        + textwrap.indent(textwrap.dedent(plan_body), " " * 8)
        + "        return plan\n",
        encoding="utf-8",
    )
    return folder


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def refusal(repo: Path, *args: str | Path) -> str:
    """The stderr of ``hdrfix *args --repo repo``, which must be bad input: exit 2, one line,
    no traceback, and the tree byte for byte as before."""
    before = snapshot(repo)
    result = hdrfix(*args, "--repo", repo)
    assert result.code == 2, result.out + result.err
    assert len(result.err.splitlines()) == 1 and "Traceback" not in result.err
    assert snapshot(repo) == before
    return result.err


def link_out(repo: Path, rel: str, outside: Path) -> bytes:
    """Move ``rel`` out of ``repo`` to ``outside``, leaving a link to it under its name (a file
    the repository names but does not hold): the moved file's bytes."""
    outside.write_bytes((repo / rel).read_bytes())
    (repo / rel).unlink()
    (repo / rel).symlink_to(outside)
    return outside.read_bytes()


def fixture_sources(*needles: str) -> list[Path]:
    """The fixtures' Python files that parse (one variant is a syntax error on purpose) and
    hold any of ``needles``."""
    import ast

    found = []
    for path in sorted((ROOT / "fixtures").rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            ast.parse(text)
        except SyntaxError:
            continue
        if any(n in text for n in needles):
            found.append(path)
    return found


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def one_thread():
    """These convolutions are tiny: one thread is faster, and far faster on a busy machine."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def framework(tmp_path: Path) -> Path:
    return copy_tree(FRAMEWORK, tmp_path / "framework")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture(scope="session")
def committed_framework(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture framework committed once per session (per xdist worker), for `repo`."""
    root = copy_tree(FRAMEWORK, tmp_path_factory.mktemp("committed") / "framework")
    git(root, "init", "-q", ".")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return root


@pytest.fixture
def repo(framework: Path, committed_framework: Path) -> Path:
    """The fixture framework as a git repository with one commit (its .git copied from one
    made once: one git process per test instead of three)."""
    shutil.copytree(committed_framework / ".git", framework / ".git", symlinks=True)
    # the index holds each file's inode and times: refreshed now, as after a commit here, so
    # that a command's own `git status` finds nothing to rewrite
    git(framework, "update-index", "-q", "--refresh")
    return framework


@pytest.fixture
def variant(tmp_path: Path):
    def make(name: str) -> Path:
        """A variant without a trainer of its own (it differs in config or network) gets the
        shared one, ``fixtures/variants/_shared``, beneath it."""
        source = VARIANTS / name
        own_trainer = any(
            "def training_step" in p.read_text(encoding="utf-8", errors="replace")
            for p in source.rglob("*.py")
        )
        dest = tmp_path / name
        if not own_trainer:
            copy_tree(VARIANTS / "_shared", dest)
        shutil.copytree(
            source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
        return dest

    return make


@contextlib.contextmanager
def cv2_stub() -> Iterator[None]:
    """An empty ``cv2`` module in ``sys.modules`` while the block runs, unless OpenCV is there.

    Why: as in the field, the fixture's ``src/npu/networks/patch/__init__.py`` imports its
    sibling modules ``hole_detector`` and ``patch_extractor``, which ``import cv2`` at the top,
    and the trainer's ``from src.npu.networks.patch.patch_network import PatchNetwork`` runs
    that ``__init__``. hdrfix does not install OpenCV and the test environment has none; no test
    calls into OpenCV, so an empty module is enough for the imports to succeed. (``hdrfix
    validate`` needs no stub: it loads the network file directly, past the package.)
    """
    if "cv2" in sys.modules or importlib.util.find_spec("cv2") is not None:
        yield
        return
    stub = types.ModuleType("cv2")
    stub.__spec__ = importlib.machinery.ModuleSpec("cv2", None)
    stub.__doc__ = "empty stand-in for OpenCV (tests/conftest.py: cv2_stub)"
    sys.modules["cv2"] = stub
    try:
        yield
    finally:
        if sys.modules.get("cv2") is stub:
            del sys.modules["cv2"]


@contextlib.contextmanager
def imported(repo: Path, *modules: str) -> Iterator[list]:
    """Import modules from a framework checkout, then forget them (each copy is different).

    A stub ``cv2`` is in place meanwhile (see :func:`cv2_stub`)."""
    roots = ("train", "src", "tools")
    sys.path.insert(0, str(repo))
    try:
        with cv2_stub():
            yield [importlib.import_module(m) for m in modules]
    finally:
        sys.path.remove(str(repo))
        for name in list(sys.modules):
            if name.split(".")[0] in roots:
                del sys.modules[name]
