"""What the analysis finds: the uses of a residual, the sites that compute it, the look-alikes
hdrfix leaves alone, and the analysis of a file holding them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hdrfix.lang.astmatch import ClampCall
from hdrfix.lang.flow import Flow, Node

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import FunctionRef


@dataclass(frozen=True)
class Use:
    """One ``exp`` of a log image plus the residual."""

    ref: FunctionRef
    node: Node  # the statement computing the sum (the ``Ln_hat`` assignment, or the exp's)
    exp: ast.expr  # the exponential: a call (``torch.exp(...)``) or a ``**`` (``torch.e ** x``)
    residual: str  # the residual's name at the sum
    log_image: str
    recon: ast.Assign | ast.AnnAssign | None  # ``Ln_hat = log_img + delta_log``, when named
    at: Node  # the statement holding the exp call
    bound: ClampCall | None = None  # ``exp(torch.clamp(log_img + delta_log, max=...))``


@dataclass
class Site:
    rel: str
    ref: FunctionRef  # the function computing the residual (a helper, or the step itself)
    residual: str  # its name there
    roots: list[ast.stmt]  # the assignments computing it: Mode A, Mode B
    anchor: ast.stmt  # the smallest statement holding every root, in their block
    uses: list[Use] = field(default_factory=list)
    torch: str | None = None  # the file's name for torch (``T`` after ``import torch as T``)
    numpy: str | None = None  # ... and for numpy, where the exp is numpy's

    @property
    def line(self) -> int:
        return self.anchor.lineno

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.ref.qualname, self.residual, self.anchor.lineno)


@dataclass(frozen=True)
class Unhandled:
    """Something that looks like a site but that hdrfix does not edit (it says so)."""

    line: int
    qualname: str
    why: str


@dataclass
class Analysis:
    sites: list[Site]
    unhandled: list[Unhandled]
    flows: dict[str, Flow]

    def uses(self) -> Iterator[tuple[Site, Use]]:
        for site in self.sites:
            for use in site.uses:
                yield site, use
