"""Variants: which phases each one applies, and each one's scratch copy patched by the engine.

A variant is ``base`` (no phase) or phases joined by ``+``. Everything validate knows about
validate names no phase: the default variants are ``base`` and each installed phase with its
requirements, and what a phase means for the metrics (the residual bound it clamps at, the
network parameters it adds) comes from the phase's own declarations.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdrfix.lang.errors import HdrfixError
from hdrfix.patchedcopy import apply_in_copy, slug
from hdrfix.validate.fixture import FIXTURE_NETWORK, copy_framework

if TYPE_CHECKING:
    from hdrfix.core.plugin import Phase
    from hdrfix.validate.network import UserNetwork


@dataclass(frozen=True)
class Variant:
    """A named set of phases: ``base`` has none, ``phase1+phase2`` has both (in that order)."""

    name: str
    phases: tuple[str, ...]
    # what its phases declare: the |delta_log| bound, and the parameters added to the network
    residual_bound: float | None = None
    network_parameters: tuple[str, ...] = ()


def reports_clamp(variant: Variant) -> bool:
    """Whether a phase of the variant clamps the residual (so its share at the bound counts)."""
    return variant.residual_bound is not None


def _variant(name: str, phases: tuple[str, ...], registry: Mapping[str, type[Phase]]) -> Variant:
    bounds = [b for p in phases if (b := registry[p].residual_bound) is not None]
    added = tuple(a for p in phases for a in registry[p].network_parameters)
    return Variant(name, phases, min(bounds) if bounds else None, added)


def parse_variants(spec: str, phases: Mapping[str, type[Phase]]) -> list[Variant]:
    """``"base,phase1,phase1+phase2"`` -> variants; bad names and missing requirements raise."""
    from hdrfix.core.plugin import resolve, unknown_phase

    names = [part.strip() for part in spec.split(",")]
    if not any(names):
        raise HdrfixError("--variants is empty", hint="e.g. --variants base,phase1,bound")
    variants: list[Variant] = []
    for name in names:
        if not name:
            raise HdrfixError(f"empty variant name in --variants {spec!r}")
        if name == "base":
            variants.append(Variant("base", ()))
            continue
        parts = [p.strip() for p in name.split("+")]
        for part in parts:
            if part == "base":
                raise HdrfixError(
                    f"variant {name!r}: base means no phase and combines with none",
                    hint="list it on its own: --variants base,...",
                )
            if part not in phases:
                raise unknown_phase(part, phases)
        if len(set(parts)) != len(parts):
            raise HdrfixError(f"variant {name!r} names a phase twice")
        for part in parts:
            missing = [dep for dep in phases[part].requires if dep not in parts]
            if missing:
                full = "+".join(resolve(parts, phases, with_deps=True))
                raise HdrfixError(
                    f"variant {name!r}: {part} requires {', '.join(missing)}, which the variant "
                    "does not include",
                    hint=f"write {full}",
                )
        variants.append(_variant(name, tuple(resolve(parts, phases, with_deps=False)), phases))
    seen: set[tuple[str, ...]] = set()
    for v in variants:
        key = tuple(sorted(v.phases))
        if key in seen:
            raise HdrfixError(f"variant {v.name!r} is listed twice")
        seen.add(key)
    return variants


def default_variants(phases: Mapping[str, type[Phase]]) -> tuple[list[Variant], list[str]]:
    """``base``, and each installed phase with the phases it requires (``phase1+phase2``);
    a phase whose requirements are not installed is skipped, with a note."""
    from hdrfix.core.plugin import resolve

    variants, notes = [Variant("base", ())], []
    for name in resolve(sorted(phases), phases, with_deps=False):
        try:
            chain = "+".join(resolve([name], phases, with_deps=True))
            variants.append(parse_variants(chain, phases)[0])
        except HdrfixError as exc:
            notes.append(f"skipped variant {name}: {exc.message}")
    return variants, notes


def trainer_only(root: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options ``hdrfix apply`` would take, with ``--exclude`` for every log-domain file of
    the checkout at ``root`` but the trainer.

    validate trains the trainer only, so the framework's other copies of the reconstruction
    (the inference module, ``tools/`` scripts) are left as they are on purpose, as a user
    would with ``--exclude``; unexcluded, phase2 rightly refuses them (they would apply tanh
    twice after it).
    """
    from hdrfix.core.repo import Repo
    from hdrfix.kit.targets import site_files

    # as `hdrfix apply` with no flag: each phase's own options are None (engine.options_for)
    opts: dict[str, Any] = {"exclude": (), **options, "repo": root, "phase_options": {}}
    # no framework here (HdrfixError): plan_run says so, in the terms of the phase
    with contextlib.suppress(HdrfixError):
        # absolute: a relative path is read against the folder validate runs in first
        others = (str(Path(root) / rel) for rel in site_files(Repo(root), opts).others)
        opts["exclude"] = (*opts["exclude"], *others)
    return opts


@dataclass
class Prepared:
    variant: Variant
    framework: Path
    network_root: Path | None
    changed: list[str]
    notes: list[str] = field(default_factory=list)


def prepare(
    variant: Variant, tmp: Path, registry: Mapping[str, type[Phase]], user: UserNetwork | None
) -> Prepared:
    """Copy the fixture (and the user's repository) and apply the variant's phases to each.

    A phase that leaves the fixture's network as it is (phase1, bound) needs nothing from the
    user's network either: where the user's repository cannot take such a variant (it holds
    a network but no trainer or config, say), its network is used unpatched, with a note.
    A variant that edits the network (phase2) must apply to the user's repository.
    """
    folder = tmp / slug(variant.name)
    framework = copy_framework(folder / "framework")
    fixture_changed = apply_in_copy(
        framework, variant.phases, registry, trainer_only(framework, {})
    )
    changed = [f"framework/{rel}" for rel in fixture_changed]
    notes: list[str] = []
    network_root = None
    if user is not None:
        network_root = folder / "network-repo"
        shutil.copytree(user.root, network_root)
        try:
            changed += [
                f"network-repo/{rel}"
                for rel in apply_in_copy(
                    network_root,
                    variant.phases,
                    registry,
                    trainer_only(network_root, {"network": str(network_root / user.rel)}),
                )
            ]
        except HdrfixError as exc:
            if FIXTURE_NETWORK in fixture_changed:
                where = f"{exc.path}: " if exc.path and not exc.path.startswith(str(tmp)) else ""
                raise HdrfixError(
                    f"--network-from: {variant.name} edits the network, but the repository "
                    f"cannot take it ({where}{exc.message})",
                    hint="point --network-from at the whole framework (config, trainer and "
                    "network), or leave this variant out",
                ) from None
            notes.append(
                f"{variant.name}: its phases leave the network as it is, and the "
                f"--network-from repository cannot take them ({exc.message}): its "
                "network is used as it is"
            )
    return Prepared(variant, framework, network_root, changed, notes)
