"""What counts as going back from the log domain: every spelling of an exponential and what it
exponentiates, through casts and copies such as ``x.float()`` and ``x.clone()``.

Spellings (issue 19, item 7): ``torch.exp(x)``, ``x.exp()``, ``x.exp_()``, ``expm1``, ``exp2``;
``torch.e ** x``, ``math.e ** x``, ``2.718... ** x``; ``torch.pow(math.e, x)``; ``getattr(torch,
"exp")(x)``; a name bound to an exp (``e = torch.exp``, ``from torch import exp as e``). An exp
function handed around as a value (``map(torch.exp, xs)``) is an exponential whose argument
hdrfix cannot see.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator
from dataclasses import dataclass

from hdrfix.lang.astmatch import call_name

#: Back from the log domain: ``exp``, and ``expm1`` where the log image was taken with ``log1p``;
#: ``exp2`` after ``log2``; the in-place forms of each.
EXP_CALLS = frozenset({"exp", "expm1", "exp2", "exp_", "expm1_", "exp2_"})
#: Methods that hand back their tensor's values in another dtype, device or buffer.
CASTS = frozenset(
    {"float", "double", "half", "bfloat16", "to", "type", "contiguous", "clone", "detach"}
)
MODULES = frozenset({"torch", "np", "numpy", "math"})
POW_CALLS = frozenset({"pow", "power", "float_power"})


@dataclass(frozen=True)
class Exponential:
    node: ast.expr  # the call, or the ``**``
    argument: ast.expr | None  # None: hdrfix cannot see what it exponentiates
    in_lambda: bool

    @property
    def line(self) -> int:
        return self.node.lineno

    @property
    def plain(self) -> bool:
        """``exp(x)`` / ``x.exp()`` as a call named exp: the spellings an edit can rewrite."""
        return isinstance(self.node, ast.Call) and call_name(self.node) in EXP_CALLS


def exp_argument(call: ast.Call) -> ast.expr | None:
    """What an exp call exponentiates: ``torch.exp(x)`` or ``x.exp()``, looking through a
    cast of ``x`` (``x.float()``)."""
    keywords = [k for k in call.keywords if k.arg != "out"]
    if len(call.args) == 1 and not keywords:
        arg: ast.expr = call.args[0]
    elif not call.args and len(keywords) == 1 and keywords[0].arg == "input":
        arg = keywords[0].value
    elif not call.args and not keywords and isinstance(call.func, ast.Attribute):
        arg = call.func.value
        if isinstance(arg, ast.Name) and arg.id in MODULES:
            return None
    else:
        return None
    return uncast(arg)


def uncast(arg: ast.expr) -> ast.expr:
    while (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Attribute)
        and arg.func.attr in CASTS
        and not (isinstance(arg.func.value, ast.Name) and arg.func.value.id in MODULES)
    ):
        arg = arg.func.value
    return arg


def is_e(node: ast.AST, e_names: frozenset[str] = frozenset()) -> bool:
    """``torch.e``, ``math.e``, ``np.e``, a name imported as e, or the literal 2.718..."""
    if isinstance(node, ast.Attribute) and node.attr == "e":
        return isinstance(node.value, ast.Name) and node.value.id in MODULES
    if isinstance(node, ast.Name):
        return node.id in e_names
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, float)
        and abs(node.value - math.e) < 1e-3
    )


def exp_function(node: ast.AST, aliases: frozenset[str] = frozenset()) -> bool:
    """Whether ``node`` names an exp function: ``torch.exp``, ``getattr(torch, "exp")``,
    a name bound to one."""
    if isinstance(node, ast.Name):
        return node.id in aliases
    if isinstance(node, ast.Attribute):
        return node.attr in EXP_CALLS and _module_chain(node.value)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
    ):
        return node.args[1].value in EXP_CALLS
    return False


def _module_chain(node: ast.AST) -> bool:
    """``torch``, ``torch.special``, ``np``: where a module-level exp lives (not ``x.exp``,
    a bound method of a tensor, which is an exp too but of ``x``)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id in MODULES | {"F", "special"}


def exponentials(
    node: ast.AST, aliases: frozenset[str] = frozenset(), e_names: frozenset[str] = frozenset()
) -> Iterator[Exponential]:
    """Every exponential in ``node`` (in the functions it defines too: a closure's exp of the
    residual is a reconstruction of the function around it), and whether it is in a lambda."""
    yield from _walk(node, aliases, e_names, False, set())


def _walk(node, aliases, e_names, in_lambda: bool, called: set[int]) -> Iterator[Exponential]:
    """Parents before children, in source order (a stack, not recursion: each level of nested
    generators cost every node below it one more resumption)."""
    stack = [(node, in_lambda)]
    while stack:
        node, in_lambda = stack.pop()
        if _alias_assignment(node, aliases):
            continue  # ``e = torch.exp`` names the exp; its calls are the exponentials
        found = _exponential(node, aliases, e_names, called)
        if found is not None:
            yield Exponential(node, found[0], in_lambda)
        inner = in_lambda or isinstance(node, ast.Lambda)
        stack.extend((child, inner) for child in reversed(list(ast.iter_child_nodes(node))))


def _exponential(node, aliases, e_names, called: set[int]):
    """(argument,) when ``node`` is an exponential, else None."""
    if isinstance(node, ast.Call):
        called.add(id(node.func))
        name = call_name(node)
        if name in EXP_CALLS or exp_function(node.func, aliases):
            if name in EXP_CALLS and isinstance(node.func, ast.Attribute):
                return (exp_argument(node),)
            simple = len(node.args) == 1 and all(k.arg == "out" for k in node.keywords)
            return (uncast(node.args[0]) if simple else None,)
        if name in POW_CALLS and len(node.args) == 2 and is_e(node.args[0], e_names):
            return (uncast(node.args[1]),)
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and is_e(node.left, e_names):
        return (uncast(node.right),)
    if (
        id(node) not in called
        and isinstance(node, (ast.Attribute, ast.Name, ast.Call))
        and isinstance(getattr(node, "ctx", ast.Load()), ast.Load)
        and exp_function(node, aliases)
    ):
        return (None,)  # an exp handed on as a value: its argument is out of sight
    return None


def _alias_assignment(node: ast.AST, aliases: frozenset[str]) -> bool:
    return (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in aliases
        and exp_function(node.value, aliases)
    )


def exp_names(tree: ast.Module) -> tuple[frozenset[str], frozenset[str]]:
    """Names bound to an exp function (``e = torch.exp``, ``from torch import exp as e``) and
    to Euler's number (``from math import e``), anywhere in the file: a name is taken for an
    exp everywhere once it is bound to one somewhere (more exps seen, never fewer)."""
    aliases: set[str] = set()
    e_names: set[str] = set()
    assigns: list[tuple[str, ast.expr]] = []
    for stmt in _statements(tree):
        if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").split(".")[0] in (
            "torch",
            "math",
            "numpy",
        ):
            for alias in stmt.names:
                if alias.name in EXP_CALLS and alias.asname:
                    aliases.add(alias.asname)
                elif alias.name == "e":
                    e_names.add(alias.asname or "e")
        elif (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, (ast.Name, ast.Attribute, ast.Call))
        ):
            assigns.append((stmt.targets[0].id, stmt.value))
    grown = True
    while grown:  # ``f = e`` after ``e = torch.exp``
        before = len(aliases)
        aliases |= {name for name, value in assigns if exp_function(value, frozenset(aliases))}
        grown = len(aliases) > before
    return frozenset(aliases), frozenset(e_names)


def _statements(tree: ast.Module) -> Iterator[ast.stmt]:
    """Every statement of the file, at any depth, without walking into expressions (an alias
    is bound by a statement; the file's expressions are many more nodes)."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.stmt):
            yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            stack.extend(getattr(node, name, ()))
