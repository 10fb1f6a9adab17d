"""Synthetic batches in the field's format, and the check that the trainer reads that format.

The default batch is the field's (``hdrfix.validate.synth.make_field_batch``): ``patch_input``
[N, 7, H, W], ``patch_target_rgb`` and ``patch_target_residual``. A trainer whose
``training_step`` reads another key would fail on it in every variant, untouched included,
which says nothing about a phase: trial stops first and asks for ``--batch-fn``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from hdrfix.lang.errors import HdrfixError

FIELD_KEYS = ("patch_input", "patch_target_rgb", "patch_target_residual")


def field_batch(batch_size: int, height: int, width: int, seed: int) -> dict[str, Any]:
    from hdrfix.validate.synth import make_field_batch

    return make_field_batch(batch_size, height, width, seed=seed)


def keys_read(step: Callable[..., Any]) -> set[str]:
    """The string keys ``training_step`` cannot do without: ``batch['k']``. (``batch.get('k',
    default)`` and ``'k' in batch`` tolerate a missing key: the field reads its optional
    ``batch_info`` so.) Empty where its source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(step)))
        params = list(inspect.signature(step).parameters)
    except (OSError, TypeError, SyntaxError, ValueError):
        return set()
    # a bound method's first parameter is the batch; the class's own function has self first
    first = 0 if inspect.ismethod(step) else 1
    if len(params) <= first:
        return set()
    batch = params[first]
    keys = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == batch
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            keys.add(node.slice.value)
    return keys


def check_format(step: Callable[..., Any], class_name: str) -> None:
    """The field batch must hold every key the trainer reads."""
    unknown = sorted(keys_read(step) - set(FIELD_KEYS))
    if unknown:
        raise HdrfixError(
            f"{class_name}.training_step reads batch key(s) {', '.join(map(repr, unknown))}, "
            f"which the synthetic field batch ({', '.join(FIELD_KEYS)}) lacks",
            hint="pass --batch-fn module:function returning your batch "
            "(called as function(batch_size, height, width, seed))",
        )
