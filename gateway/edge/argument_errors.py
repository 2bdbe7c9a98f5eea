"""Errors about an argument's value name the argument.

Two kinds reach a client. A bad literal in the document (``products(first: "x")``,
``consistentWith: "abc"``) fails validation at the value's location, and graphql-core's
message names the type, not the argument. A resolver refuses a value it cannot serve
(``first`` out of range, a foreign cursor) with a BAD_USER_INPUT error whose ``argument``
extension says which one. Both are the caller's mistake: they become BAD_USER_INPUT
errors whose message starts ``Argument "first" of field "products": ``. Bad variable
values already name their variable and are left alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from graphql import GraphQLError, Node, parse
from graphql.language import (
    ArgumentNode,
    DirectiveNode,
    FieldNode,
    ListValueNode,
    ObjectFieldNode,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
)

from gateway.edge.errors import GatewayError

BAD_USER_INPUT = "BAD_USER_INPUT"


def named_argument_error(error: GraphQLError) -> GraphQLError | None:
    """``error`` as a BAD_USER_INPUT naming the argument whose value it is about; None when
    it is not about an argument's value (or already says which one)."""
    if error.path is None:
        return _literal_error(error)
    return _resolver_error(error)


def _literal_error(error: GraphQLError) -> GraphQLError | None:
    node = error.nodes[0] if error.nodes else None
    if not isinstance(node, ValueNode | ObjectFieldNode) or isinstance(node, VariableNode):
        return None
    ancestry = _ancestry_of(node)
    if ancestry is None:
        return None
    where = _describe(ancestry)
    if where is None:
        return None
    subject, argument = where
    return GraphQLError(
        f"{subject}: {error.message}",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        extensions={"code": BAD_USER_INPUT, **({"argument": argument} if argument else {})},
    )


def _resolver_error(error: GraphQLError) -> GraphQLError | None:
    original = error.original_error
    if not isinstance(original, GatewayError) or original.code != BAD_USER_INPUT:
        return None
    argument = original.extensions.get("argument")
    field = error.nodes[0] if error.nodes else None
    if not isinstance(argument, str) or not isinstance(field, FieldNode):
        return None
    prefix = f'Argument "{argument}" of field "{field.name.value}"'
    if original.message.startswith(prefix):
        return None
    named = GatewayError(original.code, f"{prefix}: {original.message}", **original.extensions)
    return GraphQLError(
        named.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=named,
    )


def _ancestry_of(target: Node) -> list[Node] | None:
    """The nodes from the document down to ``target``, found again by location in a fresh
    parse of its source (AST nodes do not know their parents; this runs only for errors)."""
    location = target.loc
    if location is None:
        return None
    try:
        document = parse(location.source)
    except GraphQLError:
        return None
    return _descend(document, target, location.start, location.end)


def _descend(node: Node, target: Node, start: int, end: int) -> list[Node] | None:
    if node.kind == target.kind and node.loc is not None and (node.loc.start, node.loc.end) == (start, end):
        return [node]
    for key in node.keys:
        value = getattr(node, key, None)
        children: Sequence[object] = value if isinstance(value, tuple | list) else (value,)
        for child in children:
            if isinstance(child, Node) and child.loc is not None and child.loc.start <= start < child.loc.end:
                found = _descend(child, target, start, end)
                if found is not None:
                    return [node, *found]
    return None


def _describe(ancestry: Sequence[Node]) -> tuple[str, str | None] | None:
    """'Argument "filter" of field "products" (filter.minPrice)' and the argument's name, or
    the default value of a variable; None when the value is neither."""
    for i in range(len(ancestry) - 1, -1, -1):
        node = ancestry[i]
        if isinstance(node, ArgumentNode) and i > 0:
            name = node.name.value
            owner = ancestry[i - 1]
            if isinstance(owner, FieldNode):
                subject = f'Argument "{name}" of field "{owner.name.value}"'
            elif isinstance(owner, DirectiveNode):
                subject = f'Argument "{name}" of directive "@{owner.name.value}"'
            else:
                return None
            inner = _inner_path(ancestry[i:])
            return (f"{subject} ({name}{inner})" if inner else subject), name
        if isinstance(node, VariableDefinitionNode):
            return f'Default value of variable "${node.variable.name.value}"', None
    return None


def _inner_path(ancestry: Sequence[Node]) -> str:
    """Where inside an argument's value the offending part is: ``.minPrice``, ``[2]``."""
    path = ""
    for node, child in itertools.pairwise(ancestry):
        if isinstance(child, ObjectFieldNode):
            path += f".{child.name.value}"
        elif isinstance(node, ListValueNode):
            path += f"[{next(i for i, value in enumerate(node.values) if value is child)}]"
    return path
