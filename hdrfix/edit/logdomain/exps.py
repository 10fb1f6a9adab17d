"""What counts as going back from the log domain: the exp calls and what they exponentiate,
through casts such as ``x.float()``.
"""

from __future__ import annotations

import ast

#: Back from the log domain: ``exp``, and ``expm1`` where the log image was taken with ``log1p``.
EXP_CALLS = frozenset({"exp", "expm1"})
#: Methods that hand back their tensor's values in another dtype or device: ``x.float()``.
CASTS = frozenset({"float", "double", "half", "bfloat16", "to", "type", "contiguous"})
MODULES = frozenset({"torch", "np", "numpy", "math"})


def exp_argument(call: ast.Call) -> ast.expr | None:
    """What an exp call exponentiates: ``torch.exp(x)`` or ``x.exp()``, looking through a
    cast of ``x`` (``x.float()``)."""
    if len(call.args) == 1 and not call.keywords:
        arg: ast.expr = call.args[0]
    elif not call.args and isinstance(call.func, ast.Attribute):
        arg = call.func.value
        if isinstance(arg, ast.Name) and arg.id in MODULES:
            return None
    else:
        return None
    while (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Attribute)
        and arg.func.attr in CASTS
        and not (isinstance(arg.func.value, ast.Name) and arg.func.value.id in MODULES)
    ):
        arg = arg.func.value
    return arg
