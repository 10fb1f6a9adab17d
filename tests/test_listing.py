"""How a run lists and reads a repository's files (issue 20, item 2): the same files as a walk
with a ``stat`` per file found, with no system call per file beyond opening and reading it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import FRAMEWORK, copy_tree

from hdrfix.core import listing
from hdrfix.core.listing import SKIP_DIRS, list_files, read_bytes
from hdrfix.core.repo import Repo
from hdrfix.kit.logdomain.prefilter import may_exponentiate


def reference(root: Path, names: list[str] | None = None) -> list[str]:
    """What a listing must hold: every name (``os.walk``'s, not into links or skipped folders;
    else ``names``) that ``os.path.isfile`` takes for a file."""
    if names is None:
        names = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
            rel = os.path.relpath(folder, root).replace(os.sep, "/")
            names += [f if rel == "." else f"{rel}/{f}" for f in files]
    return sorted(n for n in names if os.path.isfile(os.path.join(root, n)))


def awkward_tree(root: Path) -> None:
    """Every kind of entry a walk meets, each where it could be mistaken for another."""
    for rel in ("a.py", "pkg/b.py", "pkg/deep/c.yaml", "pkg/build", "node_modules/x.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n")
    (root / "tool.egg-info").mkdir()
    (root / "tool.egg-info/PKG-INFO").write_text("x\n")
    (root / "pkg/link_to_file.py").symlink_to("b.py")
    (root / "pkg/dangling.py").symlink_to("nowhere.py")
    (root / "linked_folder").symlink_to("pkg", target_is_directory=True)
    (root / "pkg/empty").mkdir()
    os.mkfifo(root / "pkg/pipe.py")
    with open(os.fsencode(root) + b"/r\xe9sum\xe9.py", "wb") as handle:
        handle.write(b"# not utf-8 in the name\n")


def test_a_walk_lists_what_os_walk_and_isfile_list(tmp_path):
    awkward_tree(tmp_path)
    found = list_files(str(tmp_path))
    assert found.files == reference(tmp_path)
    assert "pkg/build" in found.files  # a file named like a skipped folder is a file
    assert found.links == {"pkg/link_to_file.py"}


def test_git_lists_what_it_tracks_that_is_a_file(tmp_path):
    awkward_tree(tmp_path)
    (tmp_path / ".gitignore").write_text("ignored.py\n")
    (tmp_path / "ignored.py").write_text("x = 1\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True
        )
    (tmp_path / "a.py").unlink()  # still in the index
    os.rename(tmp_path / "pkg/deep", tmp_path / "moved")  # a tracked folder now a link
    (tmp_path / "pkg/deep").symlink_to("../moved", target_is_directory=True)
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout
    listed = [os.fsdecode(n) for n in names.split(b"\0") if n]
    listed = [n for n in listed if not SKIP_DIRS.intersection(n.split("/")[:-1])]
    found = list_files(str(tmp_path))
    assert found.files == reference(tmp_path, listed)
    assert "ignored.py" not in found.files and "a.py" not in found.files
    assert found.links == {"pkg/link_to_file.py", "pkg/deep"} & set(found.files)
    # a file reached through the linked folder is read under its real name
    repo = Repo(tmp_path)
    assert repo.candidates((".yaml",), b"#") == ["moved/c.yaml"]


def test_a_link_is_a_candidate_under_its_target_once(tmp_path):
    awkward_tree(tmp_path)
    repo = Repo(tmp_path)
    assert repo.candidates((".py",), b"b.py") == ["pkg/b.py"]


@pytest.mark.parametrize("size", [0, 1, listing._CHUNK - 1, listing._CHUNK, 3 * listing._CHUNK + 7])
def test_read_bytes_reads_the_whole_file(tmp_path, size):
    data = bytes(i % 251 for i in range(size))
    (tmp_path / "f").write_bytes(data)
    assert read_bytes(str(tmp_path / "f")) == data


def test_reading_a_folder_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        read_bytes(str(tmp_path))


@pytest.mark.parametrize("in_git", [False, True], ids=["walk", "git"])
def test_filtering_many_files_asks_no_stat_per_file(tmp_path, monkeypatch, in_git):
    """The listing says which names are plain files: filtering used to ask ``os.path.isfile``
    of each file (a ``stat``) and :meth:`Repo.canonical` of each (an ``lstat``); a folder's
    directory entries tell both, whether the names come from a walk or from git."""
    root = copy_tree(FRAMEWORK, tmp_path / "repo")
    for i in range(300):
        (root / "lib" / f"pkg{i // 50}").mkdir(parents=True, exist_ok=True)
        (root / "lib" / f"pkg{i // 50}" / f"m{i}.py").write_text(f"X = {i}\n")
    if in_git:
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    asked: list[str] = []  # the files (not folders) stat or lstat was asked about
    for name in ("stat", "lstat"):
        real = getattr(os, name)

        def counting(path, *args, _real=real, **kwargs):
            if os.fspath(path).endswith(".py"):
                asked.append(os.fspath(path))
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, counting)
    repo = Repo(root)
    found = repo.candidates((".py",), may_exponentiate)
    assert "train/patch_training_framework.py" in found and "lib/pkg0/m0.py" not in found
    assert len(repo.files((".py",))) > 300
    assert not asked, sorted(asked)[:5]
