"""Building the user's trainer from its constructor's signature, and saying what each parameter got.

A parameter named ``<section>_config`` gets that config section only where it can take a mapping:
the field's ``patch_config: Optional[PatchTrainingConfig] = None`` wants an object of its own
class, and its default (``None``, which the trainer turns into that object) is what a run needs.
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrfix.lang.errors import HdrfixError

#: Parameters that take the whole config.
WHOLE_CONFIG = ("full_config", "config", "cfg", "configs", "full_cfg")
#: Other names a section goes by (the field calls the model section ``network:``).
SECTION_ALIASES = {"model": ("model", "network", "net"), "train": ("train", "training")}
#: Words of a string annotation (``"Dict[str, Any]"``) that say it takes a mapping.
MAPPING_WORDS = ("dict", "mapping", "any", "mutablemapping")


@dataclass
class Arguments:
    """``cls(**kwargs)``, and for each parameter what it got, in words (for the table footer)."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    passed: dict[str, str] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)  # parameter -> config section


def _is_mapping_type(hint: Any) -> bool | None:
    """True/False where the annotation says; None where it says nothing usable."""
    if hint is inspect.Parameter.empty or hint is Any:
        return None
    if isinstance(hint, str):
        words = hint.replace("[", " ").replace("]", " ").replace(",", " ").replace(".", " ")
        return any(w.lower() in MAPPING_WORDS for w in words.split())
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        answers = [_is_mapping_type(a) for a in typing.get_args(hint) if a is not type(None)]
        if any(a is None for a in answers):
            return None
        return any(answers)
    target = origin or hint
    if isinstance(target, type):
        return issubclass(target, (dict, collections.abc.Mapping))
    return None


def _annotation_text(hint: Any) -> str:
    if isinstance(hint, str):
        return hint
    # ``Optional[pkg.module.Knobs]`` reads ``Optional[Knobs]``, as written in the source
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", inspect.formatannotation(hint))


def _signature(cls: type) -> list[inspect.Parameter]:
    for evaluate in (True, False):  # string annotations of the user's module, where they resolve
        try:
            return list(inspect.signature(cls, eval_str=evaluate).parameters.values())
        except Exception:  # evaluating the user's annotations runs their code
            continue
    return []


def constructor_arguments(cls: type, config: Mapping[str, Any]) -> Arguments:
    """Keyword arguments for ``cls(...)``: each parameter named ``<section>_config`` (or
    ``_cfg``) gets that section where its annotation allows a mapping, ``full_config``/``config``
    the whole config; a section the config lacks, or a parameter typed as something else, is
    left to its default (else ``{}``)."""
    out = Arguments()
    for p in _signature(cls):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        has_default = p.default is not p.empty
        default_text = f"its default ({p.default!r})" if has_default else ""
        if p.name in WHOLE_CONFIG:
            out.kwargs[p.name] = config
            out.passed[p.name] = "the whole config"
            continue
        prefix = next((p.name[: -len(s)] for s in ("_config", "_cfg") if p.name.endswith(s)), "")
        if not prefix:
            if not has_default:
                raise HdrfixError(
                    f"cannot tell what {cls.__name__}'s parameter {p.name!r} takes (the "
                    "parameters trial fills are <section>_config and full_config)",
                    hint="pass --trainer-factory module:function",
                )
            out.passed[p.name] = default_text
            continue
        if _is_mapping_type(p.annotation) is False and has_default:
            out.passed[p.name] = (
                f"{default_text}: {_annotation_text(p.annotation)} is not a mapping"
            )
            continue
        names = SECTION_ALIASES.get(prefix, (prefix,))
        found = next((n for n in names if isinstance(config.get(n), dict)), None)
        if found is not None:
            out.kwargs[p.name] = config[found]
            out.passed[p.name] = f"{found}:"
            out.sections[p.name] = found
        elif has_default:
            out.passed[p.name] = f"{default_text} (no {prefix}: section)"
        else:
            out.kwargs[p.name] = {}
            out.passed[p.name] = f"{{}} (no {prefix}: section)"
    return out


def build_trainer(cls: type, rel: str, arguments: Arguments) -> Any:
    try:
        return cls(**arguments.kwargs)
    except Exception as exc:  # the user's code
        raise HdrfixError(
            f"{cls.__name__}({', '.join(arguments.kwargs)}) fails ({type(exc).__name__}: {exc})",
            rel,
            hint="pass --trainer-factory module:function to build it yourself",
        ) from None
