"""phase2 — the review's learnable output scale: the network bounds its own residual.

In the file defining ``class PatchNetwork`` (found by its class, or ``--network``)::

    self.residual_output_scale = nn.Parameter(torch.tensor([6.0]))   # end of __init__
    residual = torch.tanh(residual) * self.residual_output_scale     # forward, once per path

and in the framework, at every log-domain site, Mode A takes that residual as it comes::

    delta_log = residual_pred_log * scale    # was alpha * tanh(residual_pred_log) * abs_max * scale

Mode B and phase1's clamp stay. The scale starts at ``log_delta_alpha * log_delta_abs_max`` from
the config (6.0 after phase1; ``--scale-init`` overrides), so the patched model computes what it
computed before. Checkpoints saved before phase2 lack the parameter: ``hdrfix migrate-checkpoint``
adds it so they load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hdrfix.core.plugin import Phase, PhasePlan
from hdrfix.core.repo import Repo
from hdrfix.kit.logdomain import analyse
from hdrfix.kit.sitepatch import plan_sites
from hdrfix.kit.targets import DEFAULT_CONFIG, NETWORK_CLASS, config_files, network_file, site_files
from hdrfix.lang.errors import HdrfixError
from hdrfix_plugins.phase2 import netplain, netread, scale
from hdrfix_plugins.phase2.callers import used_elements
from hdrfix_plugins.phase2.factors import note_rebound_factors
from hdrfix_plugins.phase2.modea import ModeASite, stray_mode_a
from hdrfix_plugins.phase2.scale import PARAM as SCALE_ATTR


def plan(phase: Phase, repo: Repo, options: Mapping[str, Any]) -> PhasePlan:
    """The plan of phase2 (declared in ``hdrfix_plugins.phase2``)."""
    plan = PhasePlan(phase.name)
    _plan_network(plan, repo, options)
    plan_sites(plan, repo, options, "Mode A: delta_log = residual * scale", ModeASite())
    stray_mode_a(plan, repo, options)
    note_rebound_factors(plan, repo, options)
    if plan.unhandled and plan.refusal is None:
        first = plan.unhandled[0]
        plan.refusal = HdrfixError(
            f"{first.what}; phase2 would make the network return tanh * scale while this "
            "code still applies its own tanh and cap, so training and validation would "
            "compute different things",
            first.path,
            first.line,
            hint="rewrite it as `delta_log = residual_pred_log * scale` by hand, then rerun",
        )
    if plan.not_patched and any(not i.done for i in plan.items):
        first = plan.not_patched[0]
        plan.refusal = HdrfixError(
            f"{first.what.split(':')[0]} reconstructs from the network's output too: after "
            "phase2 the network returns tanh * scale, so this code would apply tanh twice "
            "and differ from training",
            first.path,
            first.line,
            hint=f"patch it with --include {first.path}, or leave it with --exclude {first.path}",
        )
    return plan


def _plan_network(plan: PhasePlan, repo: Repo, options: Mapping[str, Any]) -> None:
    """The scale parameter in ``__init__`` and the bound in ``forward``: found done with
    ``ast`` (so an applied repository is checked without libcst), else planned on ``ast`` where
    the layout is plain (:mod:`~hdrfix_plugins.phase2.netplain`), else with libcst."""
    rel = network_file(repo, options)
    pyfile = repo.python(rel)
    torch, nn = netread.torch_names(pyfile.tree, rel)
    refs = {m: pyfile.function(f"{NETWORK_CLASS}.{m}") for m in ("__init__", "forward")}
    for method, ref in refs.items():
        if ref is None:
            raise HdrfixError(
                f"class {NETWORK_CLASS} has no {method} method",
                rel,
                pyfile.classes[NETWORK_CLASS].lineno,
                hint="point at the network with --network FILE",
            )
    init, forward = refs["__init__"], refs["forward"]
    assert init is not None and forward is not None

    what = f"{NETWORK_CLASS}.__init__: {SCALE_ATTR} parameter"
    if netread.has_scale_parameter(pyfile.node(init), pyfile.source.text):
        plan.done(rel, init.line, what)
    else:
        _plan_init(plan, repo, options, rel, init, torch, nn, what)

    what = f"{NETWORK_CLASS}.forward: tanh * {SCALE_ATTR}"
    element = _used_element(repo, options)
    if netread.forward_covered(pyfile, pyfile.node(forward), element):
        plan.done(rel, forward.line, what)
    else:
        _plan_forward(plan, rel, forward, pyfile, torch, element, what)


def _plan_init(plan, repo, options, rel, init, torch, nn, what) -> None:
    pyfile = repo.python(rel)
    value, source = _scale_init(repo, options)
    plain = netplain.init_inserts(pyfile, init, torch, nn, value)
    if plain is not None:
        plan.todo(rel, init.line, what)
        plan.function_edits.append((rel, init, plain.applied(pyfile, init)))
        plan.notes.append(_scale_note(value, source))
        return
    from hdrfix.lang.cst.lines import FunctionLines
    from hdrfix_plugins.phase2 import network as net

    init_fn = pyfile.cst(init)
    if net.has_scale_parameter(init_fn):
        plan.done(rel, init.line, what)
        return
    plan.todo(rel, init.line, what)
    try:
        edit = net.add_scale_parameter(init_fn, torch, nn, value)
    except net.Unrecognised as exc:
        one_line = exc.node is init_fn
        raise HdrfixError(
            f"{NETWORK_CLASS}.__init__: {exc.why}",
            rel,
            init.line if one_line else FunctionLines(init, init_fn).line(exc.node),
            hint="give it an indented body" if one_line else "nothing was written",
        ) from None
    plan.function_edits.append((rel, init, edit.apply(init_fn)))
    plan.notes.append(_scale_note(value, source))


def _scale_note(value: float, source: str) -> str:
    return (
        f"{SCALE_ATTR} starts at {value!r} ({source}); checkpoints saved "
        "before phase2 need `hdrfix migrate-checkpoint IN OUT` to load"
    )


def _plan_forward(plan, rel, forward, pyfile, torch, element, what) -> None:
    plain = netplain.forward_inserts(pyfile, forward, torch, element)
    if plain is not None:
        plan.todo(rel, forward.line, what)
        plan.function_edits.append((rel, forward, plain.applied(pyfile, forward)))
        return
    from hdrfix.lang.cst.lines import FunctionLines
    from hdrfix_plugins.phase2 import network as net

    forward_fn = pyfile.cst(forward)
    try:
        bounded = net.bound_forward(forward_fn, torch, element)
    except net.Unrecognised as exc:
        line = FunctionLines(forward, forward_fn).line(exc.node)
        raise HdrfixError(
            f"{NETWORK_CLASS}.forward: cannot tell which returned value is the residual "
            f"({exc.why})",
            rel,
            line,
            hint=f"looked for {net.SHAPES}; write `torch.tanh(<residual>) * "
            f"self.{SCALE_ATTR}` there by hand",
        ) from None
    if bounded.done:
        plan.done(rel, forward.line, what)
    else:
        plan.todo(rel, forward.line, what)
        plan.function_edits.append((rel, forward, bounded.edit.apply(forward_fn)))


def _used_element(repo: Repo, options: Mapping[str, Any]) -> int | None:
    """The tuple element of the network's output that Mode A consumes, where the callers
    unpack or index it (all the same way); ``None`` when they use it whole or disagree."""

    files = site_files(repo, options)
    found = used_elements(analyse(repo.python(rel)) for rel in files.patched + files.others)
    return next(iter(found)) if len(found) == 1 else None


def _scale_init(repo: Repo, options: Mapping[str, Any]) -> tuple[float, str]:
    """``--scale-init``, else alpha * abs_max from the config (as phase1 left it), else 6.0."""

    if options.get("scale_init") is not None:
        return float(options["scale_init"]), "--scale-init"  # checked by its Option
    try:
        default = repo.canonical(DEFAULT_CONFIG)  # config_files gives real names
        configs = sorted(config_files(repo, options), key=lambda rel: rel != default)
    except HdrfixError:
        configs = []
    for rel in configs:
        alpha, abs_max = scale.mode_a_cap(repo.text(rel), rel)
        if scale.is_number(alpha) and scale.is_number(abs_max) and alpha * abs_max > 0:
            return float(alpha * abs_max), f"log_delta_alpha x log_delta_abs_max in {rel}"
    return scale.DEFAULT_SCALE, "the default: no config gives alpha x abs_max"
