"""The log-domain reconstruction of a Python file, found by data flow (docs/design.md §2, §2.1).

A *use* is ``exp(<log image> + <residual>)``, the sum written inside the call or assigned to a
name first (``Ln_hat = log_img + delta_log``). From the residual operand, the assignments that
reach the use are followed back through rescales (``delta_log = delta_log * mask_weight``),
clamps, copies and the returns of helper methods (alone or in a tuple) to the assignments that
*compute* it from the network's prediction: the *roots* (Mode A and Mode B). A *site* is one
group of roots in one function, with every use they reach. A residual that no root computes
from a prediction (a ground truth, ``gt_delta_log = target_log - log_img``) is not a site.

The *anchor* of a site is the smallest statement that holds all of its roots, in the block that
holds them (the Mode A / Mode B ``if``), never a statement of an enclosing block: code that
must see the computed residual goes right after it.

Everything here reads the standard library's ``ast`` of the file as it stands (so a phase sees
the edits of the phases before it); :class:`CstIndex` maps a statement to the libcst node the
phases edit.

The parts, by job: ``model`` (Use, Site, Analysis), ``analysis`` (:func:`analyse`, grouping uses
into sites), ``uses`` (finding the exps of a sum), ``tracing`` (following a residual back),
``calls`` and ``exps`` (what calls, returns and exps look like) and ``anchor`` (where code goes).
"""

from __future__ import annotations

from hdrfix.kit.logdomain.analysis import analyse
from hdrfix.kit.logdomain.anchor import assigned_after, common_anchor
from hdrfix.kit.logdomain.calls import callee, callers, index_in, returned
from hdrfix.kit.logdomain.exps import CASTS, EXP_CALLS, MODULES, exp_argument
from hdrfix.kit.logdomain.model import Analysis, Site, Unhandled, Use

__all__ = [
    "CASTS",
    "EXP_CALLS",
    "MODULES",
    "Analysis",
    "Site",
    "Unhandled",
    "Use",
    "analyse",
    "assigned_after",
    "callee",
    "callers",
    "common_anchor",
    "exp_argument",
    "index_in",
    "returned",
]
