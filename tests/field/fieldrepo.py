"""The field suite's helpers: exporting the real repository from ``HDRFIX_FIELD_GITDIR``, reading
its tracked bytes, and an oracle for its log-domain reconstructions that owes nothing to hdrfix.

The repository has no licence: nothing of its text is in this project. Everything here is
derived from its code by structure at run time; the only names used are those docs/design.md §2.1
already names.
"""

from __future__ import annotations

import ast
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

GITDIR_VARIABLE = "HDRFIX_FIELD_GITDIR"
BRANCHES = ("refactor/patch-network", "hdr-log-domain-learning")
EXCLUDED = (":(exclude)*.ckpt", ":(exclude)*.pth", ":(exclude)*.pt")
GIT_IDENTITY = ("-c", "user.name=hdrfix field suite", "-c", "user.email=field@hdrfix.invalid")


def gitdir() -> Path | None:
    value = os.environ.get(GITDIR_VARIABLE, "")
    return Path(value) if value else None


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def export(source: Path, branch: str, dest: Path) -> Path:
    """``git archive BRANCH`` (no checkpoint blobs) unpacked at ``dest``, committed in a fresh
    repository there, so that ``git status`` shows what a command changed."""
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", f"--git-dir={source}", "archive", branch, "--", ".", *EXCLUDED],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", f"export of {branch}")
    return dest


def tracked(repo: Path, *patterns: str) -> list[str]:
    """Tracked paths, as they are (``-z``: a non-ASCII name is not quoted)."""
    return [rel for rel in git(repo, "ls-files", "-z", *patterns).split("\0") if rel]


def tracked_bytes(repo: Path) -> dict[str, bytes]:
    return {rel: (repo / rel).read_bytes() for rel in tracked(repo)}


def changed_outside_state(repo: Path) -> list[str]:
    """``git status`` lines for anything but hdrfix's own ``.hdrfix/`` state."""
    lines = git(repo, "status", "--porcelain", "-z", "--untracked-files=all").split("\0")
    return [line for line in lines if line and ".hdrfix" not in line and "__pycache__" not in line]


# -- the oracle: every exp of a log image plus something, found without hdrfix ----------------


@dataclass(frozen=True)
class Reconstruction:
    rel: str
    qualname: str
    line: int  # of the exp call
    span: tuple[int, int]  # the enclosing function's lines


def _functions(tree: ast.Module):
    def walk(node: ast.AST, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{prefix}{child.name}", child
                yield from walk(child, f"{prefix}{child.name}.<locals>.")

    yield from walk(tree, "")


def _assigned(fn: ast.AST) -> dict[str, list[ast.expr]]:
    values: dict[str, list[ast.expr]] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values.setdefault(target.id, []).append(node.value)
    return values


def _calls(node: ast.AST, name: str) -> bool:
    func = node.func if isinstance(node, ast.Call) else None
    return (isinstance(func, ast.Attribute) and func.attr == name) or (
        isinstance(func, ast.Name) and func.id == name
    )


def _exp_argument(call: ast.Call) -> ast.expr | None:
    if not _calls(call, "exp"):
        return None
    if call.args:
        return call.args[0]
    func = call.func
    return func.value if isinstance(func, ast.Attribute) else None  # x.exp()


def _is_log_image(name: str, values: dict[str, list[ast.expr]]) -> bool:
    return any(
        isinstance(n, ast.Call) and _calls(n, "log")
        for v in values.get(name, [])
        for n in ast.walk(v)
    )


def _is_ground_truth(name: str, log_image: str, values: dict[str, list[ast.expr]]) -> bool:
    """``r = <some log> - log_img``: a target's residual, not a prediction (docs/design.md §2.1)."""
    return any(
        isinstance(v, ast.BinOp)
        and isinstance(v.op, ast.Sub)
        and isinstance(v.right, ast.Name)
        and v.right.id == log_image
        for v in values.get(name, [])
    )


def reconstructions(repo: Path) -> list[Reconstruction]:
    """Each ``exp(log_image + r)`` (directly or through one name) of a predicted ``r``."""
    found = []
    for rel in tracked(repo, "*.py"):
        try:
            tree = ast.parse((repo / rel).read_bytes())
        except (SyntaxError, ValueError):
            continue
        for qualname, fn in _functions(tree):
            values = _assigned(fn)
            for call in ast.walk(fn):
                arg = _exp_argument(call) if isinstance(call, ast.Call) else None
                sums = [arg] if isinstance(arg, ast.BinOp) else []
                if isinstance(arg, ast.Name):
                    sums = [v for v in values.get(arg.id, []) if isinstance(v, ast.BinOp)]
                for total in sums:
                    if not isinstance(total.op, ast.Add):
                        continue
                    names = [o.id for o in (total.left, total.right) if isinstance(o, ast.Name)]
                    logs = [n for n in names if _is_log_image(n, values)]
                    rest = [n for n in names if n not in logs]
                    if len(logs) != 1 or len(rest) != 1:
                        continue
                    if _is_ground_truth(rest[0], logs[0], values):
                        continue
                    span = (fn.lineno, fn.end_lineno or fn.lineno)
                    found.append(Reconstruction(rel, qualname, call.lineno, span))
    return sorted(set(found), key=lambda r: (r.rel, r.line))


def listed(status: dict, phase: str) -> list[tuple[str, str, int]]:
    """(path, qualname, line) of every site a phase's status names: done, to do, not patched
    or not handled."""
    entry = next(p for p in status["phases"] if p["phase"] == phase)
    rows = []
    for key in ("items", "not_patched", "not_handled"):
        for item in entry.get(key) or []:
            what = item.get("what", "")
            qualname = what.split(":")[0].strip() if ":" in what else what.split(" ")[0]
            rows.append((item["path"], qualname, int(item.get("line") or 0)))
    return rows
