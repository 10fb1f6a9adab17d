"""What trial reads from the trainer's own source, by structure: the attribute its steps dispatch
the normalization mode on, the config key that attribute is read from, the network its log arm
calls, and the functions that compute the log residual (to read it as they return).

A trainer whose mode is not ``normalization.type`` (``self.mode = cfg['data']['norm_mode']``)
would otherwise run the same path in every "mode" trial claims to train.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hdrfix.trial.constructor import WHOLE_CONFIG

#: Where the mode is when the trainer's source says nothing (the field's key).
DEFAULT_MODE_KEY = ("normalization", "type")
#: Calls that pass a value through unchanged, for following a mode's definition back.
PASS_THROUGH = frozenset({"str", "lower", "strip", "casefold"})
#: How many definitions back a key is followed.
MAX_DEPTH = 12


@dataclass
class TrainerSource:
    """The facts, each None (or empty) where the source does not say."""

    mode_attr: str | None = None  # ``norm_type`` of ``self.norm_type == 'log'``
    modes_seen: tuple[str, ...] = ()  # the strings it is compared with
    key_root: str | None = None  # the constructor parameter the key path starts from
    key_path: tuple[str, ...] = ()  # ``('normalization', 'type')`` from ``key_root``
    network_attrs: tuple[str, ...] = ()  # ``patch_network`` of ``self.patch_network(...)``
    #: (dotted, so ``student_model.patch_network`` of ``self.student_model.patch_network(...)``)
    residuals: dict[str, str] = field(default_factory=dict)  # method name -> residual name

    def config_path(self, sections: Mapping[str, str]) -> tuple[str, ...] | None:
        """The key in the whole config, given which section each parameter received."""
        if self.key_root is None:
            return None
        if self.key_root in WHOLE_CONFIG:
            return self.key_path
        section = sections.get(self.key_root)
        return None if section is None else (section, *self.key_path)


def _self_attr(node: ast.AST) -> str | None:
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ):
        return node.attr
    return None


def _self_path(node: ast.AST) -> str | None:
    """``a.b`` of ``self.a.b`` (a network held by a sub-model, as the older field branch has)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "self" and parts:
        return ".".join(reversed(parts))
    return None


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for e in node.elts for s in _strings(e)]
    return []


def _mode_attribute(cls: ast.ClassDef) -> tuple[str | None, tuple[str, ...]]:
    """The ``self`` attribute compared with ``'log'`` (and its sibling modes) most often."""
    seen: dict[str, Counter[str]] = {}
    for node in ast.walk(cls):
        if not isinstance(node, ast.Compare) or len(node.comparators) != 1:
            continue
        left, right = node.left, node.comparators[0]
        attr = _self_attr(left) or _self_attr(right)
        other = right if _self_attr(left) else left
        if attr is None or not isinstance(node.ops[0], (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
            continue
        for text in _strings(other):
            seen.setdefault(attr, Counter())[text.lower()] += 1
    candidates = [a for a, c in seen.items() if "log" in c]
    if not candidates:
        return None, ()
    best = max(candidates, key=lambda a: sum(seen[a].values()))
    return best, tuple(sorted(seen[best]))


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


class _KeyTracer:
    """Follows ``self.<attr> = ...`` back to ``<parameter>.get('a', ...).get('b', ...)``."""

    def __init__(self, cls: ast.ClassDef) -> None:
        self.methods = _methods(cls)

    def attr(self, name: str, depth: int = 0) -> tuple[str, tuple[str, ...]] | None:
        for fn in self.methods.values():
            for node in ast.walk(fn):
                if not isinstance(node, ast.Assign):
                    continue
                if any(_self_attr(t) == name for t in node.targets):
                    found = self.expr(node.value, fn, depth + 1)
                    if found is not None:
                        return found
        return None

    def expr(
        self, node: ast.AST, fn: ast.FunctionDef | ast.AsyncFunctionDef, depth: int
    ) -> tuple[str, tuple[str, ...]] | None:
        if depth > MAX_DEPTH:
            return None
        if isinstance(node, ast.IfExp):
            return self.expr(node.body, fn, depth + 1)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            return self.expr(node.values[0], fn, depth + 1)
        if isinstance(node, ast.Subscript):
            key = _strings(node.slice)
            base = self.expr(node.value, fn, depth + 1)
            return None if base is None or len(key) != 1 else (base[0], (*base[1], key[0]))
        if isinstance(node, ast.Call):
            return self._call(node, fn, depth)
        if isinstance(node, ast.Name):
            return self._name(node.id, fn, depth)
        attr = _self_attr(node)
        return None if attr is None else self.attr(attr, depth + 1)

    def _call(
        self, node: ast.Call, fn: ast.FunctionDef | ast.AsyncFunctionDef, depth: int
    ) -> tuple[str, tuple[str, ...]] | None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in PASS_THROUGH and len(node.args) == 1:
            return self.expr(node.args[0], fn, depth + 1)
        if not isinstance(func, ast.Attribute):
            return None
        if func.attr in PASS_THROUGH and not node.args:
            return self.expr(func.value, fn, depth + 1)
        if func.attr == "get" and node.args:
            key = _strings(node.args[0])
            base = self.expr(func.value, fn, depth + 1)
            return None if base is None or len(key) != 1 else (base[0], (*base[1], key[0]))
        return None

    def _name(
        self, name: str, fn: ast.FunctionDef | ast.AsyncFunctionDef, depth: int
    ) -> tuple[str, tuple[str, ...]] | None:
        params = {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
        if name in params:  # ``cfg = cfg or {}`` reassigns the parameter to itself
            return name, ()
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets
            ):
                found = self.expr(node.value, fn, depth + 1)
                if found is not None:
                    return found
        return None


def _network_attrs(root: Path, rel: str, class_name: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """``self.<path>(...)`` whose result a log site's residual is computed from, and the
    residual's name per method of the class."""
    from hdrfix.core.repo import Repo
    from hdrfix.kit.logdomain.analysis import analyse
    from hdrfix.lang.names import loads

    pyfile = Repo(root).python(rel)
    attrs: list[str] = []
    residuals: dict[str, str] = {}
    for site in analyse(pyfile).sites:
        if site.ref.class_name != class_name:
            continue
        residuals.setdefault(site.ref.name, site.residual)
        read = set().union(*(loads(r) for r in site.roots)) if site.roots else set()
        for node in ast.walk(pyfile.node(site.ref)):
            if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Call):
                continue
            names = {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr == "forward":
                func = func.value
            attr = _self_path(func)
            if attr and names & read and attr not in attrs:
                attrs.append(attr)
    return tuple(attrs), residuals


def read(root: Path, rel: str, class_name: str) -> TrainerSource:
    """The facts of the trainer class ``class_name`` in ``root/rel``."""
    tree = ast.parse((root / rel).read_text(encoding="utf-8"))
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    if cls is None:
        return TrainerSource()
    attr, modes = _mode_attribute(cls)
    key = _KeyTracer(cls).attr(attr) if attr else None
    networks, residuals = _network_attrs(root, rel, class_name)
    return TrainerSource(
        mode_attr=attr,
        modes_seen=modes,
        key_root=key[0] if key else None,
        key_path=key[1] if key else (),
        network_attrs=networks,
        residuals=residuals,
    )
