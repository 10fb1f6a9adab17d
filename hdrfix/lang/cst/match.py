"""Small structural helpers over libcst nodes, shared by the phases."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst


def unparen(node: cst.BaseExpression) -> cst.BaseExpression:
    """libcst keeps parentheses on the node itself; structure is the same without them."""
    return node.with_changes(lpar=[], rpar=[]) if getattr(node, "lpar", None) else node


def call_name(node: cst.CSTNode) -> str | None:
    """``torch.tanh(x)`` and ``tanh(x)`` are both ``tanh``; ``x.clamp(...)`` is ``clamp``."""
    func = node.func if isinstance(node, cst.Call) else None
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else None


def call_owner(node: cst.Call) -> str | None:
    """``torch`` for ``torch.exp(...)``: the alias under which the file imported torch."""
    owner = node.func.value if isinstance(node.func, cst.Attribute) else None
    return owner.value if isinstance(owner, cst.Name) else None


def name_of(node: cst.CSTNode) -> str | None:
    node = unparen(node) if isinstance(node, cst.BaseExpression) else node
    return node.value if isinstance(node, cst.Name) else None


def attr_of_self(node: cst.CSTNode) -> str | None:
    """``log_delta_alpha`` for ``self.log_delta_alpha``."""
    node = unparen(node) if isinstance(node, cst.BaseExpression) else node
    if (
        isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and node.value.value == "self"
    ):
        return node.attr.value
    return None


class _Collector(cst.CSTVisitor):
    def __init__(self, kind: type[cst.CSTNode]) -> None:
        self.kind = kind
        self.found: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, self.kind):
            self.found.append(node)
        return True


def find_all(node: cst.CSTNode, kind: type[cst.CSTNode]) -> list[cst.CSTNode]:
    """The nodes of ``kind`` under ``node``, in source order (libcst's own walk)."""
    collector = _Collector(kind)
    node.visit(collector)
    return collector.found


def contains(node: cst.CSTNode, kind: type[cst.CSTNode]) -> list[cst.CSTNode]:
    """The nodes of ``kind`` under ``node`` in no particular order, for a question order does
    not change (is there one, which names). libcst's walk rebuilds every node it passes, even
    for a visitor that changes nothing (a 3,000-line trainer's dry-run spent a seventh of its
    time there); this reads the nodes' fields instead."""
    return [n for n in descendants(node) if isinstance(n, kind)]


def descendants(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """``node`` and every node under it, parents before their children, siblings in no
    particular order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children(current))


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The nodes held by ``node``'s fields (libcst nodes are dataclasses), except whitespace,
    comments and punctuation: no question hdrfix asks is about those, and they are most of
    the fields."""
    out: list[cst.CSTNode] = []
    for name in _fields(type(node)):
        value = getattr(node, name)
        if _is_node(type(value)):
            out.append(value)
        elif type(value) in (tuple, list):
            out.extend(v for v in value if _is_node(type(v)))
    return out


_FIELDS: dict[type, tuple[str, ...]] = {}
_NODES: dict[type, bool] = {}


def _fields(kind: type) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        every = (f.name for f in dataclasses.fields(kind))
        names = _FIELDS[kind] = tuple(
            n for n in every if not n.startswith("whitespace") and n not in _LAYOUT
        )
    return names


# Fields that hold only layout: whitespace, comments, blank lines, brackets and separators.
_LAYOUT = frozenset(
    {
        "lpar",
        "rpar",
        "lbracket",
        "rbracket",
        "lbrace",
        "rbrace",
        "leading_lines",
        "lines_after_decorators",
        "header",
        "footer",
        "trailing_whitespace",
        "comma",
        "semicolon",
        "colon",
        "equal",
        "dot",
        "star",
        "newline",
    }
)


def _is_node(kind: type) -> bool:
    # cached per type: CSTNode is an ABC, and its isinstance check costs a lookup each time
    known = _NODES.get(kind)
    if known is None:
        known = _NODES[kind] = issubclass(kind, cst.CSTNode)
    return known


def names_in(node: cst.CSTNode) -> set[str]:
    return {n.value for n in contains(node, cst.Name) if isinstance(n, cst.Name)}


def product_factors(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    """``a * (b * c) * d`` -> ``[a, b, c, d]``: the factors of a product, parentheses ignored."""
    node = unparen(node)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Multiply):
        return product_factors(node.left) + product_factors(node.right)
    return [node]


def join_product(factors: list[cst.BaseExpression]) -> cst.BaseExpression:
    result = factors[0]
    for factor in factors[1:]:
        result = cst.BinaryOperation(result, cst.Multiply(), factor)
    return result


@dataclass(frozen=True)
class Place:
    """A statement and the block that holds it (``index`` in ``block.body``)."""

    block: cst.BaseSuite
    index: int
    stmt: cst.CSTNode


@dataclass(frozen=True)
class Assignment:
    """``target = value`` as one small statement; ``chain`` leads to it from the function body.

    ``chain[0]`` is the statement of the function's own body that holds the assignment,
    ``chain[-1]`` the assignment's own line (or the small statement in a one-line ``if``).
    """

    target: str
    value: cst.BaseExpression
    small: cst.Assign
    chain: tuple[Place, ...]


def sub_suites(stmt: cst.CSTNode) -> Iterator[cst.BaseSuite]:
    """The blocks directly inside a compound statement: if/elif/else, loops, with, try."""
    if isinstance(stmt, cst.If):
        yield stmt.body
        if isinstance(stmt.orelse, cst.If):
            yield from sub_suites(stmt.orelse)
        elif isinstance(stmt.orelse, cst.Else):
            yield stmt.orelse.body
    elif isinstance(stmt, (cst.For, cst.While)):
        yield stmt.body
        if stmt.orelse is not None:
            yield stmt.orelse.body
    elif isinstance(stmt, cst.With):
        yield stmt.body
    elif isinstance(stmt, cst.Try):
        yield stmt.body
        for handler in stmt.handlers:
            yield handler.body
        if stmt.orelse is not None:
            yield stmt.orelse.body
        if stmt.finalbody is not None:
            yield stmt.finalbody.body


def assignments(block: cst.BaseSuite, chain: tuple[Place, ...] = ()) -> Iterator[Assignment]:
    """Every ``name = value`` in a block and its nested blocks (not nested functions), in order."""
    for index, stmt in enumerate(block.body):
        place = chain + (Place(block, index, stmt),)
        if isinstance(stmt, cst.SimpleStatementLine):
            smalls: list[cst.CSTNode] = list(stmt.body)
        elif isinstance(stmt, cst.BaseSmallStatement):  # the body of a one-line ``if c: x = 1``
            smalls = [stmt]
        else:
            smalls = []
            if not isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                for suite in sub_suites(stmt):
                    yield from assignments(suite, place)
        for small in smalls:
            if isinstance(small, cst.Assign) and len(small.targets) == 1:
                target = name_of(small.targets[0].target)
                if target is not None:
                    yield Assignment(target, small.value, small, place)


def statements(block: cst.BaseSuite) -> Iterator[Place]:
    """Every statement of a block and of its nested blocks (not nested functions), outer first."""
    for index, stmt in enumerate(block.body):
        yield Place(block, index, stmt)
        if not isinstance(
            stmt, (cst.SimpleStatementLine, cst.BaseSmallStatement, cst.FunctionDef, cst.ClassDef)
        ):
            for suite in sub_suites(stmt):
                if isinstance(suite, cst.IndentedBlock):
                    yield from statements(suite)


def statement_holding(block: cst.BaseSuite, node: cst.CSTNode) -> Place | None:
    """The innermost statement of an indented block that contains ``node`` (matched by identity).

    A statement on a one-line ``if c: ...`` is held by the ``if`` itself: new statements can
    only go into indented blocks.
    """
    found = None
    for place in statements(block):
        if any(n is node for n in contains(place.stmt, type(node))):
            found = place
    return found


def string_value(node: cst.CSTNode) -> str | None:
    """``'l1'`` and ``"l1"`` are both ``l1``; anything but a plain string literal is None."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def fresh_name(node: cst.CSTNode, base: str) -> str:
    """``base``, or ``base_2``, ``base_3``...: the first that ``node`` does not use yet."""
    used = names_in(node)
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    return name


def code_of(node: cst.CSTNode) -> str:
    """The source text of an expression node, to splice into a statement being built."""
    return cst.Module(body=[]).code_for_node(node)


def small_statements(
    block: cst.BaseSuite, chain: tuple[Place, ...] = ()
) -> Iterator[tuple[cst.CSTNode, tuple[Place, ...]]]:
    """Every small statement (assignment, return, expression...) of a block, in source order.

    Like :func:`assignments`, it descends into if/loop/with/try blocks but not into nested
    functions or classes; ``chain`` leads to the statement from ``block``.
    """
    for index, stmt in enumerate(block.body):
        place = chain + (Place(block, index, stmt),)
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                yield small, place
        elif isinstance(stmt, cst.BaseSmallStatement):  # the body of a one-line ``if c: x = 1``
            yield stmt, place
        elif not isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            for suite in sub_suites(stmt):
                yield from small_statements(suite, place)


def loaded_names(node: cst.CSTNode) -> set[str]:
    """Names an expression reads: ``self.head(x, k=y)`` reads ``self``, ``x`` and ``y``.

    Unlike :func:`names_in`, attribute names (``head``) and keyword names (``k``) are not reads.
    """
    nodes = list(descendants(node))
    skip = {id(n.attr) for n in nodes if isinstance(n, cst.Attribute)}
    skip |= {id(a.keyword) for a in nodes if isinstance(a, cst.Arg) and a.keyword is not None}
    return {n.value for n in nodes if isinstance(n, cst.Name) and id(n) not in skip}


_ATOMS = (
    cst.Name,
    cst.Attribute,
    cst.Call,
    cst.Subscript,
    cst.Integer,
    cst.Float,
    cst.SimpleString,
    cst.ConcatenatedString,
    cst.FormattedString,
    cst.Tuple,
    cst.List,
    cst.Dict,
    cst.Set,
)


def as_factor(node: cst.BaseExpression) -> cst.BaseExpression:
    """``node`` safe as an operand of ``*``: parenthesised unless it is an atom or a product
    on one line (a factor written across lines inside brackets it is taken out of, such as
    ``tanh(pred\n * 2)``'s argument, would end the statement at its line break)."""
    node = unparen(node)
    if (
        isinstance(node, _ATOMS)
        or (isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Multiply))
    ) and "\n" not in code_of(node):
        return node
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
