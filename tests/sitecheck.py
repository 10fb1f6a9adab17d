"""What the tests count at each log-domain site, read from the files with hdrfix's own analysis."""

from __future__ import annotations

import ast
from pathlib import Path

from hdrfix.core.repo import Repo
from hdrfix.kit.logdomain import analyse
from hdrfix.lang.astmatch import clamp_of, target_name
from hdrfix_plugins.phase1.clampstate import clamp_state


def _statements(fn: ast.AST) -> list[ast.stmt]:
    return [s for s in ast.walk(fn) if isinstance(s, ast.stmt)]


def clamps_per_site(repo: Path, rel: str) -> list[int]:
    """For each site: how many clamp statements of its residual its function holds."""
    pyfile = Repo(repo).python(rel)
    return [
        sum(clamp_of(s, site.residual) is not None for s in _statements(pyfile.node(site.ref)))
        for site in analyse(pyfile).sites
    ]


def sites_clamped(repo: Path, rel: str, bound: float = 8.0) -> list[bool]:
    """For each site: whether every path from its computation to its uses is clamped."""
    pyfile = Repo(repo).python(rel)
    analysis = analyse(pyfile)
    return [clamp_state(analysis, pyfile, s, bound).clamped for s in analysis.sites]


def bounds_per_use(repo: Path, rel: str) -> list[int]:
    """For each reconstruction: how many clamps with a ceiling of its named sum there are."""
    pyfile = Repo(repo).python(rel)
    counts = []
    for _, use in analyse(pyfile).uses():
        assert use.recon is not None, "every bounded site has a named reconstruction"
        name = target_name(use.recon)
        fn = pyfile.node(use.ref)
        counts.append(
            sum(
                (c := clamp_of(s, name)) is not None and c.high is not None for s in _statements(fn)
            )
        )
    return counts
