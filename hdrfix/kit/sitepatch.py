"""Applying one change at every log-domain site of the framework (and of ``--include`` files).

A phase supplies a *site patcher*: ``done(...)`` tells whether a site already has the change
(patched by hand counts), ``edit(...)`` returns the edits that make it, per function (the
function computing the residual, or the ones using it). A patcher raises :class:`Unhandled`
for a site it cannot edit safely: the site is then listed as not handled, never skipped.

After planning, each edited function is analysed again as it would be written: a site the
edit does not make ``done`` is not patched but listed, and the engine checks that no inserted
statement reads a name some path leaves unassigned (:mod:`hdrfix.lang.assigned`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from hdrfix.core.plugin import Item, PhasePlan
from hdrfix.core.repo import Repo
from hdrfix.lang.errors import HdrfixError

if TYPE_CHECKING:
    from hdrfix.kit.logdomain import Analysis, Site
    from hdrfix.lang.cst.edit import FunctionEdit
    from hdrfix.lang.inserts import Inserts
    from hdrfix.lang.pyfile import FunctionRef, PyFile


class Unhandled(Exception):
    """A site this phase cannot edit safely; ``why`` says what to do by hand."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class SitePatcher(Protocol):
    def done(self, pyfile: PyFile, analysis: Analysis, site: Site) -> bool: ...

    def edit(
        self, pyfile: PyFile, analysis: Analysis, site: Site
    ) -> list[tuple[FunctionRef, FunctionEdit | Inserts]]: ...


def plan_sites(
    plan: PhasePlan, repo: Repo, options: Mapping[str, Any], what: str, patcher: SitePatcher
) -> None:
    from hdrfix.kit.logdomain import analyse
    from hdrfix.kit.targets import site_files

    files = site_files(repo, options)
    for rel in files.patched:
        pyfile = repo.python(rel)
        analysis = analyse(pyfile)
        if not analysis.sites and not analysis.unhandled:
            raise HdrfixError(
                "no log-domain reconstruction found (exp of log image + residual)",
                rel,
                hint="point at the trainer with --framework FILE",
            )
        _plan_file(plan, rel, pyfile, analysis, what, patcher)
    for rel in files.others:
        pyfile = repo.python(rel)
        analysis = analyse(pyfile)
        for site in analysis.sites:
            if not patcher.done(pyfile, analysis, site):
                line, where = _place(patcher, site)
                plan.not_patched.append(Item(rel, line, f"{where}: {what}", False))


def _plan_file(
    plan: PhasePlan,
    rel: str,
    pyfile: PyFile,
    analysis: Analysis,
    what: str,
    patcher: SitePatcher,
) -> None:

    for unhandled in analysis.unhandled:
        listed = f"{unhandled.qualname}: {unhandled.why}"
        if acknowledged(pyfile, unhandled.line):
            note = f"{rel}:{unhandled.line}: acknowledged ({ACK}), not checked: {listed}"
            if note not in plan.notes:
                plan.notes.append(note)
            continue
        plan.unhandled.append(Item(rel, unhandled.line, listed, False))
    edits: dict[str, tuple[FunctionRef, FunctionEdit | Inserts]] = {}
    todo: list[tuple[Site, list[str]]] = []
    for site in analysis.sites:
        line, where = _place(patcher, site)
        label = f"{where}: {what}"
        # Optional: what a patcher has to say about a site as it stands (phase1's hand clamps).
        for note in getattr(patcher, "notes", lambda *_: [])(pyfile, analysis, site):
            if note not in plan.notes:
                plan.notes.append(note)
        if patcher.done(pyfile, analysis, site):
            plan.done(rel, line, label)
            continue
        try:
            planned = patcher.edit(pyfile, analysis, site)
        except Unhandled as exc:
            plan.unhandled.append(Item(rel, line, f"{label}: {exc.why}", False))
            continue
        plan.todo(rel, line, label)
        todo.append((site, [ref.qualname for ref, _ in planned]))
        for ref, edit in planned:
            held = edits.get(ref.qualname)
            merged = edit if held is None else _merged(pyfile, ref, held[1], edit)
            edits[ref.qualname] = (ref, merged)
    if not edits:
        return
    new_fns = {q: (ref, edit.applied(pyfile, ref)) for q, (ref, edit) in edits.items()}
    _verify(plan, rel, pyfile, new_fns, todo, patcher)
    plan.function_edits.extend((rel, ref, fn) for ref, fn in new_fns.values())


def _merged(pyfile, ref, held, edit):
    """Two sites' edits of one function as one: as text where both are, else through libcst
    (a site whose layout needs libcst takes the function's other edits with it)."""
    from hdrfix.lang.inserts import Inserts

    if isinstance(held, Inserts) and not isinstance(edit, Inserts):
        held = held.function_edit(pyfile, ref)
    elif isinstance(edit, Inserts) and not isinstance(held, Inserts):
        edit = edit.function_edit(pyfile, ref)
    held.merge(edit)
    return held


#: The comment that acknowledges a listed line: the user has bounded it by hand, or judged it
#: harmless. Written in the code, so a reviewer sees it where the exponential is.
ACK = "# hdrfix: handled"


def acknowledged(pyfile: PyFile, line: int) -> bool:
    """Whether the listed line carries :data:`ACK` as a comment (not inside a string)."""
    if ACK not in pyfile.source.text:
        return False
    cached = pyfile.analyses.get(("ack", ""))
    if cached is None or cached[0] is not pyfile.tree:
        import io
        import tokenize

        text = pyfile.source.text
        lines = {
            t.start[0]
            for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type == tokenize.COMMENT and t.string.startswith(ACK)
        }
        cached = (pyfile.tree, lines)
        pyfile.analyses[("ack", "")] = cached
    return line in cached[1]  # type: ignore[operator]


def _place(patcher: SitePatcher, site: Site) -> tuple[int, str]:
    """The line and function an item names: where the residual is computed, unless the
    patcher edits the reconstructions (``edits_uses``)."""
    if getattr(patcher, "edits_uses", False) and site.uses:
        names = dict.fromkeys(u.ref.qualname for u in site.uses)
        return site.uses[0].node.line, ", ".join(names)
    return site.line, site.ref.qualname


def _verify(plan, rel, pyfile, new_fns, todo, patcher) -> None:
    """Each edited site must read as done once the edit is made; otherwise it is refused."""
    from hdrfix.kit.logdomain import analyse

    edited = pyfile.reparsed({q: fn for q, (_, fn) in new_fns.items()})
    analysis = analyse(edited)
    for site, _ in todo:
        match = next(
            (
                s
                for s in analysis.sites
                if s.ref.qualname == site.ref.qualname and s.residual == site.residual
            ),
            None,
        )
        if match is None or not patcher.done(edited, analysis, match):
            statement = _rewritten(pyfile, edited, site.ref.qualname)
            shown = f"`{statement}`" if statement else "its edit"
            hint = getattr(patcher, "by_hand", None)
            raise HdrfixError(
                f"{site.ref.qualname}: after hdrfix's edit, {shown} would still not make "
                f"'{site.residual}' read as {plan.phase} wants (internal check); nothing was "
                "written",
                rel,
                site.line,
                hint=hint(pyfile, site)
                if hint
                else "make that change at this line by hand, "
                f"then rerun; `hdrfix status` will show {plan.phase} applied there",
            )


def _rewritten(pyfile, edited, qualname: str) -> str:
    """The first line of the function that the edit added or changed, stripped."""
    from hdrfix.lang.lines import line_opcodes

    old = pyfile.segment(pyfile.function(qualname)).splitlines()
    new = edited.segment(edited.function(qualname)).splitlines()
    for tag, _, _, j1, j2 in line_opcodes(old, new):
        if tag in ("replace", "insert") and j1 < j2:
            return new[j1].strip()
    return ""
