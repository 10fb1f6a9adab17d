"""bound — bound the reconstruction, not the residual (ours, beyond the review;
docs/design.md §3, §4).

In every target config, under ``normalization``::

    log_output_max: 11.089865684509277     # log of the largest output, 65504 (half-float max)

and in the framework, at every log-domain site, right after the reconstruction::

    Ln_hat = log_img + delta_log
    Ln_hat = torch.clamp(Ln_hat, max=self.log_output_max)

with ``__init__`` reading ``log_output_max`` next to its other settings. Why: a residual capped
at 6 (phase1) still overflows where the log image is already bright, and it cannot lift a hole
(log(eps) = -13.8) to its true value; a ceiling on the output removes every overflow pixel and
leaves the residual free (docs/design.md §4: 0 overflow pixels, no cost in frame error).

- Where the sum is written inside ``exp(...)`` with no name, it gets one (``Ln_hat``, or a
  fresh variant), bounded the same way, and ``exp`` takes the name. Wrapping the clamp inside
  ``exp(...)`` would hide the site from the structural search every phase relies on.
- Sites in ``--include`` files (an export module, a tools script) get the literal value: there
  ``self`` has no ``log_output_max``.
- The value is not exactly ``math.log(ceiling)``: log(65504) rounds *up* to a float32 whose
  exp is 65504.0078, so every clamped pixel would itself read as overflow by the framework's
  own test ``prediction > 65504``. It is the largest float32 whose exp does not exceed the
  ceiling (see ``hdrfix.halffloat.log_ceiling``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hdrfix.core.plugin import Option, Phase, PhasePlan
from hdrfix.halffloat import FLOAT32_MAX, HALF_MAX, log_ceiling

if TYPE_CHECKING:  # the module's top level is its declaration: `--help` and `list` import it
    from hdrfix.core.repo import Repo

KEY = "log_output_max"
DEFAULT_CEILING = HALF_MAX  # HDR frames are stored as half-float EXR


def _valid(value: Any) -> bool:
    """A ceiling the config already has and may keep: one that bounds something. ``.inf``, or
    a log above that of the float32 maximum, lets every output through (its exp is inf)."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return is_number and 0 < value <= log_ceiling(FLOAT32_MAX)


class Bound(Phase):
    name = "bound"
    summary = "clamp Ln_hat at log(65504) at every site: no output above the half-float max"
    requires = ()
    options = (
        # at most 1 would bound the log output at or below 0
        Option(
            "ceiling",
            f"largest output value, linear (default {DEFAULT_CEILING:g})",
            float,
            above=1.0,
        ),
    )

    def plan(self, repo: Repo, options: Mapping[str, Any]) -> PhasePlan:
        from hdrfix.kit.configedit import plan_values
        from hdrfix.kit.readpath import section_notes
        from hdrfix.kit.settingplan import plan_reads
        from hdrfix.kit.settingreads import Read, kept_values
        from hdrfix.kit.sitepatch import plan_sites
        from hdrfix.kit.targets import config_files, framework_file, sites_in

        ceiling = options.get("ceiling")  # checked by its Option
        value = log_ceiling(float(ceiling or DEFAULT_CEILING))

        plan = PhasePlan(self.name)
        # planned aside: the key is written only where the trainer reads it (below)
        config_plan = PhasePlan(self.name)
        keep = {KEY: _valid} if ceiling is None else {}
        configs = config_files(repo, options)
        for rel in configs:
            plan_values(config_plan, repo, [rel], kept_values(repo, rel, {KEY: value}, keep))
        plan.notes.extend(section_notes(repo, options, configs))

        framework = framework_file(repo, options)
        found = sites_in(repo, framework)
        classes = sorted({u.ref.class_name for s in found for u in s.uses if u.ref.class_name})
        with_attr = {
            c for c in classes if plan_reads(plan, repo, framework, c, [Read(KEY, "float", value)])
        }
        for c in classes:
            if c not in with_attr:
                plan.notes.append(
                    f"{framework}: {c}.__init__ does not read log_delta_abs_max "
                    f"from a settings mapping; its sites use the literal {value!r}"
                )
        if with_attr or not classes:
            plan.items[0:0] = config_plan.items
            plan.text_edits.update(config_plan.text_edits)
        else:
            # Nothing would read the key, and a trainer that unpacks the section into a fixed
            # set of fields (``NormConfig(**cfg['normalization'])``) fails on an unknown one.
            plan.notes.append(f"{KEY} is not added to the configs: no trainer reads it")
        plan_sites(
            plan,
            repo,
            options,
            f"bound the reconstruction (max {KEY})",
            _BoundSite(value, framework, with_attr),
        )
        return plan


class _BoundSite:
    """``Ln_hat = torch.clamp(Ln_hat, max=...)`` right after ``Ln_hat = log_img + delta_log``,
    at every use of the site (the reconstruction, wherever it is)."""

    edits_uses = True  # its items name the reconstructions it bounds

    def __init__(self, value: float, framework: str, with_attr: set[str]) -> None:
        self.value = value
        self.framework = framework
        self.with_attr = with_attr  # classes whose __init__ reads log_output_max

    def done(self, pyfile, analysis, site) -> bool:
        return all(_bounded(analysis, use, self.value) for use in site.uses)

    def edit(self, pyfile, analysis, site):
        import libcst as cst

        from hdrfix.kit.sitepatch import Unhandled
        from hdrfix.lang.astmatch import target_name
        from hdrfix.lang.cst.edit import FunctionEdit
        from hdrfix.lang.cst.index import cst_index
        from hdrfix.lang.cst.match import code_of, unparen

        if site.torch is None:
            raise Unhandled("this file does not import torch (add `import torch`)")
        edits = []
        for use in site.uses:
            if _bounded(analysis, use, self.value):
                continue
            if _base_two(use.exp):
                raise Unhandled(
                    "exp2 of the reconstruction: the ceiling is a natural log; bound it by hand "
                    "with log2 of the largest output (16.0 for 65504)"
                )
            attr = pyfile.rel == self.framework and use.ref.class_name in self.with_attr
            ceiling = f"self.{KEY}" if attr else repr(self.value)
            index = cst_index(pyfile, use.ref)
            if use.recon is not None:
                name = target_name(use.recon)
                bound = cst.parse_statement(f"{name} = {site.torch}.clamp({name}, max={ceiling})")
                edits.append((use.ref, FunctionEdit().insert_after(index.stmt(use.recon), bound)))
                continue
            if not _plain_exp(use.exp):
                raise Unhandled(
                    "the sum is exponentiated with a spelling hdrfix does not rewrite; name it "
                    "first (Ln_hat = log_img + delta_log), then run hdrfix again"
                )
            # No name for the sum: bound it inside the exp, on the line that already reads it
            # (a new line before it would read the residual where a second dispatch chain
            # cannot prove it assigned).
            call = index.call(use.exp, use.at.stmt)
            # torch.exp(<sum>), or <sum>.exp() where the sum is the receiver
            inner = call.args[0].value if call.args else call.func.value  # type: ignore[attr-defined]
            bounded = cst.parse_expression(
                f"{site.torch}.clamp({code_of(unparen(inner))}, max={ceiling})"
            )
            edits.append((use.ref, FunctionEdit().swap(inner, bounded)))
        return edits


def _base_two(node) -> bool:
    import ast

    from hdrfix.lang.astmatch import call_name

    return isinstance(node, ast.Call) and call_name(node) in ("exp2", "exp2_")


def _plain_exp(node) -> bool:
    """``torch.exp(<sum>)`` or ``<sum>.exp()``: the calls whose argument an edit can wrap."""
    import ast

    from hdrfix.lang.astmatch import call_name

    return isinstance(node, ast.Call) and call_name(node) in ("exp", "expm1")


def _bounded(analysis, use, value: float) -> bool:
    """Every value of the reconstruction reaching the exp passed a clamp with a ceiling."""

    from hdrfix.lang.astmatch import target_name

    if use.recon is None:
        return use.bound is not None and _ceiling_ok(use.bound, use.exp, value)
    name = target_name(use.recon)
    flow = analysis.flows[use.ref.qualname]
    defs = flow.defs_of(name, use.at)
    return bool(defs) and all(_ceiling_clamp(d.stmt, name, value) for d in defs)


def _ceiling_clamp(stmt, name: str, value: float) -> bool:

    from hdrfix.lang.astmatch import clamp_of

    clamp = clamp_of(stmt, name)
    return clamp is not None and _ceiling_ok(clamp, stmt, value)


def _ceiling_ok(clamp, node, value: float) -> bool:
    import ast

    if clamp.high is None:
        return False
    if clamp.literal:
        return clamp.high <= value + 1e-6
    # ``max=self.log_output_max``: the config's ceiling, which this phase sets
    return any(isinstance(n, ast.Attribute) and n.attr == KEY for n in ast.walk(node))
