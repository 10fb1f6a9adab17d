"""Which files of the user's repository a phase edits, found as docs/design.md §2 describes.

Every lookup starts with a cheap bytes search; only the files (and, in Python, the functions)
that pass it are parsed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hdrfix.core.givenpaths import repo_rel
from hdrfix.lang.errors import HdrfixError

if TYPE_CHECKING:
    from hdrfix.core.repo import Repo
    from hdrfix.kit.logdomain import Site
    from hdrfix.lang.pyfile import PyFile

DEFAULT_CONFIG = "configs/colleague_training_config.yaml"
DEFAULT_FRAMEWORK = "train/patch_training_framework.py"
SECTION = "normalization"
CONFIG_MARKER = "log_delta_abs_max"
YAML_SUFFIXES = (".yaml", ".yml")
NETWORK_CLASS = "PatchNetwork"


def config_files(repo: Repo, options: Mapping[str, Any]) -> list[str]:
    """Every YAML file holding ``normalization.log_delta_abs_max`` (see :func:`sections_of`),
    or the ``--config`` files."""
    chosen = [repo_rel(repo, p) for p in options.get("config") or ()]
    if chosen:
        for rel in chosen:
            if not sections_of(repo.text(rel), rel):
                raise HdrfixError(
                    f"has no {SECTION}.{CONFIG_MARKER}",
                    rel,
                    hint="pass a training config that holds the section",
                )
        return chosen
    holding = repo.candidates(YAML_SUFFIXES, CONFIG_MARKER.encode())
    found = [rel for rel in holding if sections_of(repo.text(rel), rel)]
    for rel in holding if not found else ():
        line = _key_line(repo.text(rel))
        if line is not None:
            # --config would refuse the file too: say where the key is and what hdrfix reads
            raise HdrfixError(
                f"no config found: {CONFIG_MARKER} is here, but in no mapping named '{SECTION}' "
                "(at the top level, or nested in mappings: a list item is not looked into)",
                rel,
                line,
                hint=f"hdrfix edits a '{SECTION}:' mapping reached through mappings alone: "
                "move the key into one, then rerun",
            )
    if not found:
        raise HdrfixError(
            f"no config found: no YAML file holds {SECTION}.{CONFIG_MARKER} "
            f"(the default is {DEFAULT_CONFIG})",
            str(repo.root),
            hint="point at the config with --config FILE",
        )
    return found


def sections_of(text: str, rel: str) -> list[str]:
    """The dotted paths of a config's ``normalization`` mappings holding ``log_delta_abs_max``:
    ``normalization`` at the top level, as docs/design.md §2 has it; else wherever the keys are
    nested (``data.normalization``, a trainer reading ``full_config['data']['normalization']``).

    Targets are found by the keys they hold, so the nested section is found the same way; a
    top-level section in any document of the file wins (and its lookup reads only that entry
    of a large file).
    """
    from hdrfix.lang import yamledit

    if yamledit.has_key(text, rel, f"{SECTION}.{CONFIG_MARKER}"):
        return [SECTION]
    found: list[str] = []
    if CONFIG_MARKER in text:
        for doc in yamledit.load_all(text, rel):
            found += [p for p in _nested_sections(doc, ()) if p not in found]
    return found


def _key_line(text: str) -> int | None:
    """The first line where ``log_delta_abs_max`` is written as a key."""
    match = re.search(rf"^[ \t-]*['\"]?{CONFIG_MARKER}['\"]?[ \t]*:", text, re.M)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _nested_sections(node: Any, path: tuple[str, ...]) -> list[str]:
    if not isinstance(node, Mapping):
        return []
    found = []
    for key, value in node.items():
        if not isinstance(key, str) or "." in key:  # not expressible as a dotted path
            continue
        if key == SECTION and isinstance(value, Mapping) and CONFIG_MARKER in value:
            found.append(".".join((*path, key)))
        else:
            found += _nested_sections(value, (*path, key))
    return found


def framework_file(repo: Repo, options: Mapping[str, Any]) -> str:
    """``--framework``, else the default path, else the one trainer with log-domain sites."""
    if options.get("framework"):
        rel = repo_rel(repo, options["framework"])
        repo.python(rel)
        return rel
    from hdrfix.kit.logdomain.prefilter import may_exponentiate

    if repo.exists(DEFAULT_FRAMEWORK):
        # By its real name, as every other path here is: the default may be a symlink.
        return repo.canonical(DEFAULT_FRAMEWORK)
    found = [
        rel
        for rel in repo.candidates((".py",), b"training_step", may_exponentiate)
        if _is_trainer(repo.python(rel)) and sites_in(repo, rel)
    ]
    if len(found) == 1:
        return found[0]
    if not found:
        raise HdrfixError(
            f"no framework found: {DEFAULT_FRAMEWORK} is absent and no other file has a class "
            "with training_step and a log-domain reconstruction (exp of log image + residual)",
            str(repo.root),
            hint="point at the trainer with --framework FILE",
        )
    raise HdrfixError(
        f"several candidate frameworks: {', '.join(found)}",
        str(repo.root),
        hint="choose one with --framework FILE",
    )


@dataclass(frozen=True)
class SiteFiles:
    patched: list[str]  # the framework and every --include
    others: list[str]  # log-domain code elsewhere, reported as not patched


def site_files(repo: Repo, options: Mapping[str, Any]) -> SiteFiles:
    from hdrfix.kit.logdomain.prefilter import may_exponentiate

    framework = framework_file(repo, options)
    included = [repo_rel(repo, p) for p in options.get("include") or ()]
    for rel in included:
        if not sites_in(repo, rel):
            raise HdrfixError(
                "has no log-domain reconstruction to patch",
                rel,
                hint="--include takes files with exp(log image + residual)",
            )
    patched = [framework] + [r for r in included if r != framework]
    excluded = {repo_rel(repo, p) for p in options.get("exclude") or ()}
    both = sorted(excluded & set(patched))
    if both:
        raise HdrfixError(
            "is both patched and excluded", both[0], hint="drop one of --include/--exclude"
        )
    others = [
        rel
        # (A log image need not be taken in the file: a helper may be handed one.)
        for rel in repo.candidates((".py",), may_exponentiate)
        if rel not in patched and rel not in excluded and sites_in(repo, rel)
    ]
    return SiteFiles(patched, others)


def sites_in(repo: Repo, rel: str) -> list[Site]:
    """The log-domain sites of a file, as it stands in this run."""
    from hdrfix.kit.logdomain import analyse

    return analyse(repo.python(rel)).sites


def _is_trainer(pyfile: PyFile) -> bool:
    return any(ref.name == "training_step" and ref.class_name for ref in pyfile.functions)


def network_file(repo: Repo, options: Mapping[str, Any]) -> str:
    """``--network``, else the one file defining ``class PatchNetwork(``."""
    if options.get("network"):
        rel = repo_rel(repo, options["network"])
        if not _class_lines(repo, rel):
            raise HdrfixError(
                f"defines no class {NETWORK_CLASS}",
                rel,
                hint="pass the file that defines the network with --network",
            )
        return rel
    found = [
        rel
        for rel in repo.candidates((".py",), f"class {NETWORK_CLASS}(".encode())
        if _class_lines(repo, rel)
    ]
    if not found:
        raise HdrfixError(
            f"no network found: no .py file defines class {NETWORK_CLASS}",
            str(repo.root),
            hint="point at the network with --network FILE",
        )
    if len(found) > 1:
        raise HdrfixError(
            f"several files define class {NETWORK_CLASS}: {', '.join(found)}",
            str(repo.root),
            hint="choose one with --network FILE",
        )
    return found[0]


def _class_lines(repo: Repo, rel: str) -> list[int]:
    """Lines of the module-level ``class PatchNetwork`` statements (two in one file: error)."""
    lines = [
        n.lineno
        for n in repo.python(rel).tree.body
        if isinstance(n, ast.ClassDef) and n.name == NETWORK_CLASS
    ]
    if len(lines) > 1:
        raise HdrfixError(
            f"defines class {NETWORK_CLASS} {len(lines)} times "
            f"(lines {', '.join(map(str, lines))})",
            rel,
            lines[1],
            hint="keep one definition, or rename the others",
        )
    return lines
