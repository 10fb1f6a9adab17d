"""Independent oracle: does code that hdrfix inserts read only definitely-assigned names?

Run: .venv/bin/python benchmarks/oracle_unbound.py [--format text|json] [--venv PATH]

Why. A past bug put phase1's ``delta_log = torch.clamp(delta_log, ...)`` after a whole
``if self.norm_type == ...`` chain in which ``delta_log`` exists in one arm only, so training died
with UnboundLocalError in every other mode (docs/design.md §2.1). hdrfix's own tests check
placement with hdrfix's own idea of the code; this script asks a type checker that shares
none of its code.

What it does.

1. Installs ``basedpyright`` (pinned, ``--pin``) with the ordinary pip into its own venv, by default
   ``.cache/oracle-venv`` under the repo (git-ignored; ~300 MB, it bundles Node). It is never part
   of ``make test``.
2. For ``fixtures/framework`` and each folder of ``fixtures/variants`` (a variant without a trainer
   of its own is laid over ``_shared`` as ``tests/conftest.py``'s ``variant`` fixture does; skipped:
   ``_shared`` itself, ``syntax_error``, ``malformed_yaml``, ``nonscalar_yaml``, ``two_frameworks``,
   and ``net_two_classes`` for combinations with phase2) and each phase combination in ``COMBOS``,
   it copies the repo to a temp dir, runs ``hdrfix apply <phases> --repo <copy>`` (a non-zero exit
   is recorded with its first message line), and diffs every Python file before/after (difflib;
   the "after" line numbers of added or replaced lines are the *inserted* lines).
3. Runs basedpyright once over all changed Python files with only ``reportPossiblyUnboundVariable``
   and ``reportUnboundVariable`` on (``typeCheckingMode: "off"``), ``--outputjson``. A diagnostic
   on an inserted line is *flagged* (hdrfix's fault); one on an untouched line of the same file is
   *pre-existing* (the framework's own, e.g. a name bound under one ``if`` and read under another
   with the same condition, which pyright does not correlate). A flagged read is marked
   *inherited* (still counted) when a later unconditional statement of the same block makes the
   same read in the unpatched file and pyright flags it there too (``inherited()``): then the
   inserted line adds no failing path. pyright reports a name only at its first possibly-unbound
   read on a path, so an inserted ``x = f(x)`` also hides the reads after it.
4. Negative control: the fixture trainer (or, while the fixture has no ``norm_type`` chain, a
   minimal two-chain trainer built here) with the OLD bug inserted textually: the clamp as a new
   statement right after the end of the first ``if self.norm_type == ...`` chain of
   ``training_step``, at the chain's indentation. The oracle must flag that line.

Exit status: 0 when no inserted line is flagged and the control is flagged; 1 when an inserted line
is flagged, a patched file does not parse for pyright, or the control is NOT flagged; 2 when the
oracle itself cannot run (install failure, pyright crash).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORK = ROOT / "fixtures" / "framework"
VARIANTS = ROOT / "fixtures" / "variants"
TRAINER = "train/patch_training_framework.py"
NETWORK = "src/npu/networks/patch/patch_network.py"
PY = sys.executable
DEFAULT_VENV = ROOT / ".cache" / "oracle-venv"
PIN = "1.40.2"

COMBOS: tuple[tuple[str, ...], ...] = (
    ("phase1",),
    ("phase1", "phase2"),
    ("phase1", "phase3"),
    ("bound",),
    ("phase1", "phase2", "phase3", "bound"),
)
# Not standalone repos, or not applicable without extra options (see fixtures/variants/README.md).
SKIP_VARIANTS = {"_shared", "syntax_error", "malformed_yaml", "nonscalar_yaml", "two_frameworks"}
SKIP_PHASE2 = {"net_two_classes"}  # two PatchNetwork classes: phase2 needs --network
UNBOUND_RULES = {"reportPossiblyUnboundVariable", "reportUnboundVariable"}
PYRIGHT_CONFIG = {
    "typeCheckingMode": "off",
    "analyzeUnannotatedFunctions": True,
    "reportPossiblyUnboundVariable": "error",
    "reportUnboundVariable": "error",
}
BUG = "delta_log = torch.clamp(delta_log, min=-8.0, max=8.0)"

# The control's fallback: the smallest trainer with the field's two dispatch chains
# (docs/design.md §2.1).
MINIMAL_TRAINER = """\
import torch


class PatchFrameInterpolationTrainer:
    def training_step(self, batch, batch_idx):
        patch_input = batch['patch_input']
        scale = self.patch_network.residual_scale_factor
        if self.norm_type == 'global':
            residual_pred_norm = self.patch_network(patch_input) * scale
        elif self.norm_type == 'log':
            eps = self.log_epsilon
            log_img = torch.log(torch.clamp(patch_input[:, :3], min=0) + eps)
            residual_pred_log = self.patch_network(patch_input)
            if self.log_delta_abs_max > 0.0:
                delta_log = self.log_delta_alpha * torch.tanh(residual_pred_log) * scale
            else:
                delta_log = self.log_delta_scale * torch.tanh(residual_pred_log) * scale
        else:
            residual_pred = self.patch_network(patch_input) * scale
        if self.norm_type == 'global':
            patch_pred_full = patch_input[:, :3] + residual_pred_norm
        elif self.norm_type == 'log':
            Ln_hat = log_img + delta_log
            patch_pred_full = torch.exp(Ln_hat) - eps
        else:
            patch_pred_full = patch_input[:, :3] + residual_pred
        return {'loss': patch_pred_full.mean()}
"""


@dataclass
class Flag:
    file: str
    line: int
    rule: str
    message: str
    text: str
    inherited: bool = False  # the unpatched code reads it anyway: see inherited()


@dataclass
class Case:
    repo: str
    phases: tuple[str, ...]
    skipped: str = ""
    apply_exit: int | None = None
    apply_message: str = ""
    changed: dict[str, list[int]] = field(default_factory=dict)  # file -> after-line numbers
    flagged: list[Flag] = field(default_factory=list)
    pre_existing: list[Flag] = field(default_factory=list)
    other: list[Flag] = field(default_factory=list)  # syntax errors etc. in a patched file
    path: str = ""  # the patched copy (temporary)

    @property
    def inserted(self) -> int:
        return sum(len(v) for v in self.changed.values())


@dataclass
class Control:
    source: str = ""
    file: str = ""
    line: int = 0
    flagged: bool = False
    diagnostics: list[Flag] = field(default_factory=list)  # those on the inserted line
    others: int = 0  # the trainer's own possibly-unbound reads elsewhere (not the control's point)


def lines_of(text: str) -> list[str]:
    """Lines as pyright counts them (\\r\\n, \\r or \\n), without their endings."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def read(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        return f.read()


def python_files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): read(p)
        for p in sorted(root.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def changed_lines(before: str, after: str) -> list[int]:
    """1-based line numbers, in ``after``, of the lines added or replaced."""
    matcher = difflib.SequenceMatcher(None, lines_of(before), lines_of(after), autojunk=False)
    out: list[int] = []
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            out.extend(range(j1 + 1, j2 + 1))
    return out


def has_own_trainer(source: Path) -> bool:
    return any(
        "def training_step" in p.read_text(encoding="utf-8", errors="replace")
        for p in source.rglob("*.py")
    )


def lay_out(name: str, dest: Path) -> None:
    """The repo as the tests see it: tests/conftest.py's ``framework`` and ``variant``, plus, for a
    variant with no ``class PatchNetwork`` at all, the fixture's network (tests/test_phase2.py's
    ``with_network``; such variants import it from fixtures/framework)."""
    ignore = shutil.ignore_patterns("__pycache__")
    if name == "framework":
        shutil.copytree(FRAMEWORK, dest, ignore=ignore)
        return
    source = VARIANTS / name
    if not has_own_trainer(source):
        shutil.copytree(VARIANTS / "_shared", dest, ignore=ignore)
    shutil.copytree(source, dest, dirs_exist_ok=True, ignore=ignore)
    if not any("class PatchNetwork" in text for text in python_files(dest).values()):
        target = dest / NETWORK
        target.parent.mkdir(parents=True, exist_ok=True)
        for folder in (dest / "src", dest / "src/npu", dest / "src/npu/networks", target.parent):
            (folder / "__init__.py").touch()
        shutil.copy(FRAMEWORK / NETWORK, target)


def repos() -> list[str]:
    names = sorted(p.name for p in VARIANTS.iterdir() if p.is_dir() and p.name not in SKIP_VARIANTS)
    return ["framework", *names]


def first_line(*texts: str) -> str:
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                return line.strip()
    return ""


def run_case(case: Case, dest: Path) -> None:
    lay_out(case.repo, dest)
    case.path = str(dest)
    before = python_files(dest)
    # Patch the log-domain code outside the trainer too (phase2 refuses to leave it behind).
    status = [PY, "-m", "hdrfix", "status", "--repo", str(dest), "--format", "json"]
    listed = subprocess.run(status, capture_output=True, text=True, check=False).stdout
    others = sorted(
        {
            i["path"]
            for p in json.loads(listed or '{"phases": []}')["phases"]
            for i in p["not_patched"]
        }
    )
    include = [a for rel in others for a in ("--include", rel)]
    cmd = [PY, "-m", "hdrfix", "apply", *case.phases, "--repo", str(dest), *include]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    case.apply_exit = proc.returncode
    if proc.returncode != 0:
        case.apply_message = first_line(proc.stderr, proc.stdout).replace(str(dest), "<copy>")
    for rel, text in python_files(dest).items():
        lines = changed_lines(before.get(rel, ""), text) if rel in before else None
        if lines is None:  # a new file: every line is inserted
            lines = list(range(1, len(lines_of(text)) + 1))
        if lines:
            case.changed[rel] = lines


# --- the negative control -------------------------------------------------------------------


def _is_self_norm_type(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "norm_type"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def norm_type_chain(tree: ast.Module) -> ast.If | None:
    """The first ``if`` of ``training_step`` whose test compares ``self.norm_type``."""
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name == "training_step":
            ifs = [
                n
                for n in ast.walk(fn)
                if isinstance(n, ast.If)
                and isinstance(n.test, ast.Compare)
                and any(_is_self_norm_type(e) for e in [n.test.left, *n.test.comparators])
            ]
            if ifs:
                return min(ifs, key=lambda n: (n.lineno, n.col_offset))
    return None


def insert_old_bug(text: str) -> tuple[str, int] | None:
    """``text`` with the clamp right after the first norm_type chain, and the new line's number."""
    chain = norm_type_chain(ast.parse(text))
    if chain is None or chain.end_lineno is None:
        return None
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    head = lines[chain.lineno - 1]
    indent = head[: len(head) - len(head.lstrip())]
    if not lines[chain.end_lineno - 1].endswith(("\n", "\r")):
        lines[chain.end_lineno - 1] += newline
    lines.insert(chain.end_lineno, indent + BUG + newline)
    return "".join(lines), chain.end_lineno + 1


def make_control(dest: Path) -> Control:
    fixture = FRAMEWORK / TRAINER
    bugged = insert_old_bug(read(fixture)) if fixture.exists() else None
    if bugged is not None:
        source = f"fixtures/framework/{TRAINER}"
    else:
        bugged = insert_old_bug(MINIMAL_TRAINER)
        source = "built-in minimal two-chain trainer (the fixture has no norm_type chain)"
    assert bugged is not None
    text, line = bugged
    path = dest / TRAINER
    path.parent.mkdir(parents=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return Control(source=source, file=str(path), line=line)


# --- basedpyright -----------------------------------------------------------------------------


def pyright_version(binary: Path) -> str:
    if not binary.exists():
        return ""
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    m = re.search(r"basedpyright (\S+)", proc.stdout)
    return m.group(1) if m else ""


def ensure_basedpyright(venv: Path, pin: str) -> tuple[Path, str]:
    binary = venv / "bin" / "basedpyright"
    version = pyright_version(binary)
    if version != pin:
        print(f"installing basedpyright=={pin} into {venv} ...", file=sys.stderr)
        if not (venv / "bin" / "python").exists():
            subprocess.run([PY, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, f"basedpyright=={pin}"], check=True)
        version = pyright_version(binary)
        if not version:
            raise SystemExit(f"oracle: {binary} does not run after install")
    full = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    return binary, " ".join(full.stdout.split())


def run_pyright(binary: Path, root: Path, files: list[str]) -> list[dict]:
    config = root / "pyrightconfig.json"
    config.write_text(json.dumps(PYRIGHT_CONFIG, indent=2))
    cmd = [str(binary), "--project", str(config), "--outputjson", *files]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=root)
    start = proc.stdout.find("{")
    if proc.returncode not in (0, 1) or start < 0:
        raise SystemExit(f"oracle: basedpyright exited {proc.returncode}: {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout[start:])
    analyzed = report.get("summary", {}).get("filesAnalyzed")
    if analyzed != len(files):
        raise SystemExit(f"oracle: basedpyright analyzed {analyzed} of {len(files)} files")
    return list(report.get("generalDiagnostics", []))


# --- the run ----------------------------------------------------------------------------------


def line_map(before: str, after: str) -> dict[int, int]:
    """1-based ``after`` line -> ``before`` line, for the lines the diff leaves unchanged."""
    matcher = difflib.SequenceMatcher(None, lines_of(before), lines_of(after), autojunk=False)
    out: dict[int, int] = {}
    for tag, i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.update({j + 1: i1 + (j - j1) + 1 for j in range(j1, j2)})
    return out


_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.With, ast.AsyncWith)
_JUMPS = (ast.Return, ast.Raise, ast.Break, ast.Continue)


def enclosing_block(tree: ast.AST, line: int) -> tuple[list[ast.stmt], int] | None:
    """The statement list holding the innermost simple statement on ``line``, and its index."""
    for name in ("body", "orelse", "finalbody", "handlers", "cases"):
        block = getattr(tree, name, None)
        if not isinstance(block, list):
            continue
        for index, stmt in enumerate(block):
            if not isinstance(stmt, ast.AST) or not hasattr(stmt, "lineno"):
                continue
            if stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno):
                inner = enclosing_block(stmt, line)
                if inner is not None:
                    return inner
                if isinstance(stmt, ast.stmt):
                    return block, index
    return None


def inherited(flag: Flag, after: str, before: str, changed: list[int], old: set[tuple]) -> bool:
    """Whether the flagged read is one the unpatched code makes anyway, unconditionally: a later
    statement of the same block (reached without passing an ``if``/loop/``try``/``with`` or a
    jump) is flagged for the same name in the unpatched file. A read of the name under a later
    ``if`` (e.g. the second ``norm_type`` chain) does not count: pyright does not correlate the
    two conditions, but at run time that read may be guarded where the inserted one is not."""
    m = re.match(r'"(\w+)"', flag.message)
    try:
        tree = ast.parse(after)
    except SyntaxError:
        return False
    found = enclosing_block(tree, flag.line)
    if m is None or found is None:
        return False
    name, (block, index) = m.group(1), found
    to_before = line_map(before, after)
    for stmt in block[index + 1 :]:
        if stmt.lineno in changed:
            continue  # inserted too: not the unpatched code's read
        if isinstance(stmt, (*_COMPOUND, *_JUMPS, ast.FunctionDef, ast.ClassDef)):
            return False
        span = range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)
        if any((to_before.get(n), flag.message) in old for n in span):
            return True
        stores = (
            n for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        )
        if any(n.id == name for n in stores):
            return False  # rebound before any flagged read
    return False


def evaluate(binary: Path, jobs: int, tmp: Path) -> tuple[list[Case], Control]:
    cases: list[Case] = []
    for repo in repos():
        for phases in COMBOS:
            case = Case(repo, phases)
            if repo in SKIP_PHASE2 and "phase2" in phases:
                case.skipped = "skipped: two PatchNetwork classes, phase2 needs --network"
            cases.append(case)
    todo = [c for c in cases if not c.skipped]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(run_case, c, tmp / "cases" / c.repo / "-".join(c.phases)) for c in todo
        ]
        futures += [pool.submit(lay_out, r, tmp / "unpatched" / r) for r in {c.repo for c in todo}]
        for f in futures:
            f.result()
    control = make_control(tmp / "control")

    # Every changed file, patched and unpatched (the baseline for "inherited"), in one run.
    owner: dict[str, tuple[Case | None, str]] = {}
    baseline: dict[str, str] = {}  # unpatched path -> repo
    for case in todo:
        for rel in case.changed:
            owner[str(Path(case.path) / rel)] = (case, rel)
            unpatched = tmp / "unpatched" / case.repo / rel
            if unpatched.exists():
                baseline[str(unpatched)] = case.repo
    owner[control.file] = (None, TRAINER)
    diagnostics = run_pyright(binary, tmp, sorted([*owner, *baseline]))

    before: dict[tuple[str, str], set[tuple]] = {}  # (repo, file) -> {(line, message)}
    texts: dict[str, str] = {}
    for d in diagnostics:
        path = str(Path(d["file"]))
        if path not in texts and (path in owner or path in baseline):
            texts[path] = read(Path(path))
        if path in baseline and d.get("rule") in UNBOUND_RULES:
            repo = baseline[path]
            rel = Path(path).relative_to(tmp / "unpatched" / repo).as_posix()
            line = d["range"]["start"]["line"] + 1
            before.setdefault((repo, rel), set()).add((line, d.get("message", "")))

    for d in diagnostics:
        path = str(Path(d["file"]))
        if path not in owner:
            continue
        case, rel = owner[path]
        lines = lines_of(texts[path])
        line = d["range"]["start"]["line"] + 1
        rule = d.get("rule", "")
        text = lines[line - 1].strip() if line <= len(lines) else ""
        flag = Flag(rel, line, rule or "(syntax)", d.get("message", ""), text)
        if case is None:
            if line == control.line:
                control.diagnostics.append(flag)
                if rule in UNBOUND_RULES and "delta_log" in flag.message:
                    control.flagged = True
            else:
                control.others += 1
        elif rule not in UNBOUND_RULES:
            case.other.append(flag)
        elif line in case.changed[rel]:
            unpatched = tmp / "unpatched" / case.repo / rel
            if unpatched.exists():
                old = before.get((case.repo, rel), set())
                flag.inherited = inherited(
                    flag, texts[path], read(unpatched), case.changed[rel], old
                )
            case.flagged.append(flag)
        else:
            case.pre_existing.append(flag)
    return cases, control


def print_text(cases: list[Case], control: Control, version: str, seconds: float, verbose: bool):
    print(f"oracle: {version}; rules {', '.join(sorted(UNBOUND_RULES))}; {seconds:.1f} s\n")
    print("| repo | phases | apply | inserted lines | flagged | pre-existing | note |")
    print("|---|---|---|---|---|---|---|")
    for c in cases:
        if c.skipped:
            print(f"| {c.repo} | {' '.join(c.phases)} | - | - | - | - | {c.skipped} |")
            continue
        notes = [c.apply_message] if c.apply_message else []
        inherited = sum(f.inherited for f in c.flagged)
        if inherited:
            notes.append(f"{inherited} flagged read(s) inherited (*)")
        if c.other:
            notes.append(f"{len(c.other)} syntax/other error(s)")
        note = "; ".join(notes)
        print(
            f"| {c.repo} | {' '.join(c.phases)} | {c.apply_exit} | {c.inserted} "
            f"| {len(c.flagged)} | {len(c.pre_existing)} | {note} |"
        )
    flagged = [(c, f) for c in cases for f in c.flagged]
    if flagged:
        print("\nflagged inserted lines (hdrfix's):")
        for c, f in flagged:
            star = " (*)" if f.inherited else ""
            print(f"  {c.repo} [{' '.join(c.phases)}] {f.file}:{f.line}: {f.message}{star}")
            print(f"      {f.text}")
        if any(f.inherited for _, f in flagged):
            print(
                "  (*) inherited: a later unconditional statement of the same block already reads"
                " this name\n      possibly-unbound in the unpatched file, so no new failing path"
                " (still counted)."
            )
    other = [(c, f) for c in cases for f in c.other]
    if other:
        print("\nother errors in patched files:")
        for c, f in other:
            print(f"  {c.repo} [{' '.join(c.phases)}] {f.file}:{f.line}: {f.message}")
    if verbose:
        print("\npre-existing (untouched lines of patched files):")
        for c in cases:
            for f in c.pre_existing:
                print(f"  {c.repo} [{' '.join(c.phases)}] {f.file}:{f.line}: {f.message}")
    verdict = "FLAGGED (oracle works)" if control.flagged else "NOT FLAGGED (oracle broken)"
    print(f"\ncontrol: old bug `{BUG}` after the first norm_type chain")
    print(f"  source: {control.source}")
    print(f"  inserted at line {control.line}: {verdict}")
    for f in control.diagnostics:
        print(f"  {f.file}:{f.line}: {f.rule}: {f.message}  | {f.text}")
    print(f"  ({control.others} other possibly-unbound read(s) in that trainer, not the control's)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="basedpyright's venv")
    parser.add_argument("--pin", default=PIN, help="basedpyright version to install")
    parser.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--keep", action="store_true", help="keep the patched copies")
    parser.add_argument("--verbose", action="store_true", help="list pre-existing diagnostics")
    args = parser.parse_args()

    start = time.perf_counter()
    binary, version = ensure_basedpyright(args.venv.resolve(), args.pin)
    tmp = Path(tempfile.mkdtemp(prefix="hdrfix-oracle-")).resolve()
    try:
        cases, control = evaluate(binary, args.jobs, tmp)
    finally:
        if args.keep:
            print(f"patched copies kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - start

    bad = any(c.flagged or c.other for c in cases) or not control.flagged
    if args.format == "json":
        out = {
            "basedpyright": version,
            "seconds": round(seconds, 2),
            "config": PYRIGHT_CONFIG,
            "cases": [{**asdict(c), "inserted": c.inserted} for c in cases],
            "control": asdict(control),
            "ok": not bad,
        }
        for c in out["cases"]:
            c.pop("path")
        out["control"]["file"] = TRAINER
        print(json.dumps(out, indent=2))
    else:
        print_text(cases, control, version, seconds, args.verbose)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
