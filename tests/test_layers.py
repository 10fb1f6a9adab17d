"""The house in layers (docs/design.md, "Layers"): each layer imports only the layers below it,
and no module or package imports itself back through others.

The graph is read statically with ``ast`` from every ``.py`` file of ``hdrfix`` and
``hdrfix_plugins``, imports inside functions and under ``TYPE_CHECKING`` included: a lazy
import is still an arrow a maintainer must follow, and a circle that only works because one
side imports late is still a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hdrfix", "hdrfix_plugins")

# Longest prefix wins. What is in none of them and lives in ``hdrfix`` is a command (cli,
# phase_flags, render, validate, trial, the shared target options and patched-copy kit).
LAYERS: dict[str, int] = {
    "hdrfix": 0,  # the package itself holds the version only (matched exactly, see layer_of)
    "hdrfix.halffloat": 0,  # plain arithmetic shared by status and hdrfix.nn
    "hdrfix.nn": 1,  # the runtime library patched trainers import; knows no hdrfix machinery
    "hdrfix.lang": 1,
    "hdrfix.core": 2,
    "hdrfix.kit": 3,
    "hdrfix_plugins": 4,
}
COMMANDS = 5
NAMES = {0: "base", 1: "language", 2: "core", 3: "phase kit", 4: "plugins", 5: "commands"}


def layer_of(module: str) -> int:
    if module == "hdrfix":
        return 0
    best = ""
    for prefix in LAYERS:
        if prefix != "hdrfix" and (module == prefix or module.startswith(prefix + ".")):
            best = max(best, prefix, key=len)
    return LAYERS[best] if best else COMMANDS


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _targets(node: ast.AST, module: str, is_package: bool, known: Iterable[str]) -> list[str]:
    known = set(known)
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    # ``from pkg import sub`` is an arrow to the submodule, not to the package's __init__
    subs = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in known]
    rest = [a for a in node.names if f"{source}.{a.name}" not in known]
    return subs + ([source] if rest else [])


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """module -> {imported module of ours: line of the first such import}."""
    found = modules(root)
    graph: dict[str, dict[str, int]] = {}
    for module, path in found.items():
        edges: dict[str, int] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            for target in _targets(node, module, path.name == "__init__.py", found):
                while target and target not in found:  # `import a.b.c` of a name, not a module
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.setdefault(target, node.lineno)
        graph[module] = edges
    return graph


def upward(graph: dict[str, dict[str, int]], root: Path) -> list[str]:
    found = modules(root)
    return sorted(
        f"{found[m].relative_to(root)}:{line}: {m} ({NAMES[layer_of(m)]}) imports {t} "
        f"({NAMES[layer_of(t)]})"
        for m, edges in graph.items()
        for t, line in edges.items()
        if layer_of(t) > layer_of(m)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                on.discard(w)
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                out.append(sorted(members))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def unit(module: str) -> str:
    """The package-level node: ``hdrfix.core``, ``hdrfix.cli``, ``hdrfix_plugins.phase2``."""
    return ".".join(module.split(".")[:2])


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph(ROOT)


def test_the_graph_is_read(graph: dict[str, dict[str, int]]) -> None:
    # a reader that saw nothing would pass every check below
    assert "hdrfix.lang.errors" in graph["hdrfix.core.repo"]
    assert "hdrfix.core.plugin" in graph["hdrfix.kit.sitepatch"]
    assert (
        "hdrfix.lang.cst.match" in graph["hdrfix.kit.trainersetting"]
    )  # a relative-free `from pkg import sub`


def test_no_import_runs_up_a_layer(graph: dict[str, dict[str, int]]) -> None:
    assert upward(graph, ROOT) == []


def test_no_module_imports_itself_back(graph: dict[str, dict[str, int]]) -> None:
    assert circles({m: set(e) for m, e in graph.items()}) == []


def test_no_package_imports_itself_back(graph: dict[str, dict[str, int]]) -> None:
    packages: dict[str, set[str]] = {}
    for m, edges in graph.items():
        packages.setdefault(unit(m), set()).update(unit(t) for t in edges if unit(t) != unit(m))
    assert circles(packages) == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """A core module importing the kit, and two modules importing each other, are reported."""
    for rel, text in {
        "hdrfix/__init__.py": "",
        "hdrfix/core/__init__.py": "",
        "hdrfix/core/repo.py": "def f():\n    from hdrfix.kit import sitepatch\n",
        "hdrfix/kit/__init__.py": "",
        "hdrfix/kit/sitepatch.py": "from hdrfix.core.repo import f\n",
        "hdrfix/cli.py": "import hdrfix.trial.cli\n",
        "hdrfix/trial/__init__.py": "",
        "hdrfix/trial/cli.py": "from hdrfix.cli import main\n",
        "hdrfix_plugins/__init__.py": "",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(tmp_path)
    assert upward(graph, tmp_path) == [
        "hdrfix/core/repo.py:2: hdrfix.core.repo (core) imports hdrfix.kit.sitepatch (phase kit)"
    ]
    assert circles({m: set(e) for m, e in graph.items()}) == [
        ["hdrfix.cli", "hdrfix.trial.cli"],
        ["hdrfix.core.repo", "hdrfix.kit.sitepatch"],
    ]
