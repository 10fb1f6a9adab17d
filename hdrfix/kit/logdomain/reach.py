"""Every exponential is seen or listed (issue 19, item 7; issue 18, item 6).

After the sites are found, each exponential of the file that is not the ``exp`` of a site's
reconstruction is checked: if the value it exponentiates may come from the network's output,
or from somewhere hdrfix cannot see, it is listed as not handled. Sound rather than clever:

- *from the network*: a ``tanh`` or a call of the network (as the site analysis defines it);
- *out of sight*: a parameter of a method that no call in the file passes (step methods,
  ``forward`` and ``__init__`` excepted: the framework hands them the batch and the settings;
  a module-level function nothing calls is a script's entry point, given data), an entry of a
  container (``out['delta_log']``) filled with such a value, the result of a helper that returns
  or yields one, a loop or comprehension variable over such an iterable;
- *not* from the network: constants, ``range``, parameters annotated ``int``/``bool``/``str``,
  the result of a ``log`` (``exp(log(x))`` is ``x``), a Python number made of a tensor
  (``math.exp(float(delta_log.max()))`` reports a gain, it makes no frame), names the function
  does not assign (modules, globals), and ``self.<attr>`` unless the class assigns it such a
  value.

So ``exp(-0.5 * (x / sigma) ** 2)`` over an ``arange`` is left alone, while ``torch.exp(log_hat)``
where a helper returned ``log_img + delta_log`` is listed with its file and line.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from hdrfix.kit.logdomain.calls import callers, loop_source, yielded_or_returned
from hdrfix.kit.logdomain.exps import Exponential
from hdrfix.kit.logdomain.prefilter import may_exponentiate
from hdrfix.kit.logdomain.uses import _UseFinder
from hdrfix.lang.astmatch import LOG_CALLS, call_name, own_expressions
from hdrfix.lang.flow import Flow, Node, flow_of
from hdrfix.lang.names import COMPREHENSIONS

if TYPE_CHECKING:
    from hdrfix.lang.pyfile import FunctionRef

#: Entry points the framework calls with data and settings, not with a residual.
ENTRY_POINTS = frozenset({"forward", "__init__", "__call__"})
LOGS = LOG_CALLS | {"log2", "log10"}
SCALARS = frozenset({"int", "bool", "str"})
#: What turns a tensor into one Python number: a statistic then, never a frame.
SCALAR_CASTS = frozenset({"float", "int", "bool", "item", "len"})


class _ReachFinder(_UseFinder):
    """The check of every exponential against the uses the analysis found."""

    def _may_exponentiate(self, ref: FunctionRef) -> bool:
        """Whether the function can hold an exponential; a file that binds a name to an exp
        (``from torch import exp as e``) can call it by that name anywhere."""
        return may_exponentiate(self.pyfile.segment(ref)) or bool(self.exp_names[0])

    def _unseen_exponentials(self, handled: set[int]) -> None:
        memo: dict[tuple, bool] = {}
        self._outer: dict[int, tuple[Flow, Node]] = {}  # nested function's flow -> around it
        for ref in self.pyfile.functions:
            if not self._may_exponentiate(ref):
                continue
            listed = {u.line for u in self.unhandled if u.qualname == ref.qualname}
            self._check_body(ref, self.flow(ref), handled, listed, memo)

    def _check_body(self, ref, flow: Flow, handled: set[int], listed: set[int], memo) -> None:
        """The exponentials of one function body, and of the functions it defines (their
        free names are followed in the function around them)."""
        for stmt in flow.statements():
            node = flow.node_of(stmt)
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = flow_of(stmt)
                self._outer[id(inner)] = (flow, node)
                self._check_body(ref, inner, handled, listed, memo)
                continue
            for expr in own_expressions(stmt):
                for exp in self.exponentials(expr):
                    if id(exp.node) in handled or exp.line in listed:
                        continue
                    why = self._why(ref, flow, node, expr, exp, memo)
                    if why:
                        listed.add(exp.line)
                        self._unhandled(exp.line, ref.qualname, why)

    def _why(self, ref, flow, node, expr, exp: Exponential, memo) -> str | None:
        if exp.argument is None:
            return (
                "an exp hdrfix cannot read (handed on as a value, or with several arguments); "
                "bound what it exponentiates by hand"
            )
        bound = _comprehension_iters(expr, exp.node)
        if exp.in_lambda:
            if _is_sum(exp.argument):
                return "exp of a sum inside a lambda"
            # a lambda's parameters are what its caller passes (a scheduler's step, say):
            # only what it reads from around it is followed
            clean = ast.Constant(None)
            bound.update(dict.fromkeys(_lambda_params(expr, exp.node), clean))
        if self._carries(ref, flow, node, exp.argument, memo, bound):
            return (
                f"{_spelling(exp)} of a value that may come from the network's output, in a shape "
                "hdrfix does not follow (a dict entry, a helper's result, a loop or lambda "
                "variable, a parameter); clamp the residual or bound the reconstruction by hand"
            )
        return None

    # ------------------------------------------------------------------ may it carry a residual

    def _carries(self, ref, flow: Flow, at: Node, expr: ast.AST, memo, bound=None) -> bool:
        stack: list[ast.AST] = [expr]
        while stack:
            sub = stack.pop()
            if isinstance(sub, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(sub, ast.Call):
                name = call_name(sub)
                if name in LOGS:
                    continue  # exp(log(x)) gives x back: nothing is amplified
                if name in SCALAR_CASTS:
                    continue  # a Python number (``math.exp(float(d.max()))``): a statistic
                if name == "tanh" or self._network_call(ref, flow, sub):
                    return True
                helper = self._callee(ref, sub)
                if helper is not None:
                    if self._helper_carries(helper, memo):
                        return True
                    continue
            elif isinstance(sub, ast.Attribute) and _on_self(sub):
                if ref.class_name and self._attribute_carries(ref.class_name, sub.attr, memo):
                    return True
                continue
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                if bound and sub.id in bound:
                    if self._carries(ref, flow, at, bound[sub.id], memo):
                        return True
                    continue
                if self._name_carries(ref, flow, at, sub.id, memo):
                    return True
                continue
            stack.extend(ast.iter_child_nodes(sub))
        return False

    def _name_carries(self, ref, flow: Flow, at: Node, name: str, memo) -> bool:
        if name == "self":
            return False
        if name not in flow.locals:
            outer = self._outer.get(id(flow))  # a nested function's free name
            return outer is not None and self._name_carries(ref, *outer, name, memo)
        for d in flow.defs_of(name, at):
            key: tuple = (ref.qualname, id(d), name)
            if key not in memo:
                memo[key] = False  # a cycle (a loop) adds nothing
                memo[key] = self._def_carries(ref, flow, d, name, memo)
            if memo[key]:
                return True
        # a container filled elsewhere in the function: ``out['delta_log'] = delta_log``
        for stmt in flow.statements():
            if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(_stores_into(t, name) for t in targets) and stmt.value is not None:
                    key = (ref.qualname, id(stmt), name, "item")
                    if key not in memo:
                        memo[key] = False
                        node = flow.node_of(stmt)
                        memo[key] = self._carries(ref, flow, node, stmt.value, memo)
                    if memo[key]:
                        return True
        return False

    def _def_carries(self, ref, flow: Flow, d: Node, name: str, memo) -> bool:
        if d is flow.entry:
            return self._parameter_carries(ref, flow, name, memo)
        loop = loop_source(flow, d.stmt)
        if loop is not None:
            return self._carries(ref, flow, flow.node_of(loop[0]), loop[1], memo)
        if isinstance(d.stmt, ast.ExceptHandler):
            return False
        return any(self._carries(ref, flow, d, e, memo) for e in own_expressions(d.stmt))

    def _parameter_carries(self, ref: FunctionRef, flow: Flow, name: str, memo) -> bool:
        if id(flow) in self._outer:
            return False  # a nested function's parameter: like a lambda's, what it is given
        fn = flow.fn
        args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        arg = next((a for a in args if a.arg == name), None)
        note = arg.annotation if arg is not None else None
        if isinstance(note, ast.Name) and note.id in SCALARS:
            return False
        if ref.name in ENTRY_POINTS or ref.name.endswith("_step"):
            return False
        found = callers(self.pyfile, self.flow, ref, name)
        if not found:
            # a helper method nothing here calls: its value is out of sight; a module-level
            # function nothing here calls is an entry point (``main(argv)``): it gets data
            return ref.class_name is not None
        return any(
            arg is not None and self._carries(caller, self.flow(caller), at, arg, memo)
            for caller, at, arg in found
        )

    def _helper_carries(self, helper: FunctionRef, memo) -> bool:
        key = ("helper", helper.qualname)
        if key not in memo:
            memo[key] = False
            flow = self.flow(helper)
            memo[key] = any(
                self._carries(helper, flow, flow.node_of(stmt), value, memo)
                for stmt, value in yielded_or_returned(flow, None)
            )
        return memo[key]

    def _attribute_carries(self, class_name: str, attr: str, memo) -> bool:
        """``self.attr`` carries a residual only where the class assigns it one (a trace of
        the network's output); settings read in ``__init__`` do not."""
        key = ("attr", class_name, attr)
        if key not in memo:
            memo[key] = False
            found = False
            for ref in self.pyfile.functions:
                if ref.class_name != class_name or f"self.{attr}" not in self.pyfile.segment(ref):
                    continue
                flow = self.flow(ref)
                for stmt in flow.statements():
                    if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or stmt.value is None:
                        continue
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    if any(_is_self_attr(t, attr) for t in targets) and _from_network(
                        self, ref, flow, flow.node_of(stmt), stmt.value
                    ):
                        found = True
            memo[key] = found
        return memo[key]


def _from_network(finder: _ReachFinder, ref, flow: Flow, at: Node, value: ast.AST) -> bool:
    return finder._predicted(ref, flow, at, value, set(), top=False)


def _spelling(exp: Exponential) -> str:
    return "exp" if exp.plain else ast.unparse(exp.node).split("(")[0].strip()[:40] or "exp"


def _on_self(node: ast.Attribute) -> bool:
    return isinstance(node.value, ast.Name) and node.value.id == "self"


def _is_self_attr(target: ast.AST, attr: str) -> bool:
    return isinstance(target, ast.Attribute) and target.attr == attr and _on_self(target)


def _stores_into(target: ast.AST, name: str) -> bool:
    """``name[k] = ...`` or ``name.attr = ...``: the container ``name`` now holds the value."""
    while isinstance(target, (ast.Subscript, ast.Attribute)):
        target = target.value
        if isinstance(target, ast.Name) and target.id == name:
            return True
    return False


def _is_sum(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub))


def _lambda_params(expr: ast.AST, inner: ast.AST) -> set[str]:
    """The parameters of the lambdas around ``inner`` in ``expr``."""
    names: set[str] = set()
    for lam in ast.walk(expr):
        if isinstance(lam, ast.Lambda) and any(n is inner for n in ast.walk(lam.body)):
            args = lam.args
            every = args.posonlyargs + args.args + args.kwonlyargs
            every += [a for a in (args.vararg, args.kwarg) if a is not None]
            names |= {a.arg for a in every}
    return names


def _comprehension_iters(expr: ast.AST, inner: ast.AST) -> dict[str, ast.expr]:
    """Names bound by the comprehensions around ``inner`` in ``expr``, each with its iterable."""
    found: dict[str, ast.expr] = {}
    for comp in ast.walk(expr):
        if isinstance(comp, COMPREHENSIONS) and any(n is inner for n in ast.walk(comp)):
            for gen in comp.generators:
                for name in ast.walk(gen.target):
                    if isinstance(name, ast.Name):
                        found[name.id] = gen.iter
    return found
