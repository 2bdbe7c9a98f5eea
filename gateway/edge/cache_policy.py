"""HTTP cache policy of a GraphQL operation: a table of hints per type and field, merged over
the fields an operation selects (the most restrictive wins), and the read models it reads.

A hint applies to a field by the field itself (``FIELD_HINTS``, keyed ``(parent type, field)``)
or by the named type it returns (``TYPE_HINTS``). A root ``Query`` field with neither is
``NO_STORE``: a new field is uncacheable until someone decides otherwise (a unit test lists
every root field). Mutations and subscriptions are ``NO_STORE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from cachetools import LRUCache
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
)

from gateway.edge.auth import Principal
from gateway.edge.errors import InvalidInputValue
from gateway.schema.scalars import parse_position


class Scope(IntEnum):
    """Ordered from the least to the most restrictive."""

    PUBLIC = 0
    PRIVATE = 1
    NO_STORE = 2


@dataclass(frozen=True)
class CacheHint:
    scope: Scope
    # Seconds; None: this hint sets no bound.
    max_age: int | None = None
    stale_while_revalidate: int | None = None
    # Read models whose data the field shows (their positions go into the ETag).
    reads: frozenset[str] = frozenset()


# What an operation with no hinted field (``{ __typename }``) gets.
DEFAULT_MAX_AGE = 300
DEFAULT_STALE_WHILE_REVALIDATE = 300


@dataclass(frozen=True)
class CachePolicy:
    scope: Scope
    max_age: int
    stale_while_revalidate: int
    reads: frozenset[str]

    def for_caller(self, principal: Principal) -> CachePolicy:
        """Anything answered to a signed-in person is theirs alone (at least PRIVATE)."""
        if principal.subject is not None and self.scope is Scope.PUBLIC:
            return CachePolicy(Scope.PRIVATE, self.max_age, 0, self.reads)
        return self


NO_STORE = CachePolicy(Scope.NO_STORE, 0, 0, frozenset())


def merge(hints: Iterable[CacheHint]) -> CachePolicy:
    """The most restrictive scope, the smallest bounds, every read model."""
    scope = Scope.PUBLIC
    max_age = DEFAULT_MAX_AGE
    stale = DEFAULT_STALE_WHILE_REVALIDATE
    reads: set[str] = set()
    for hint in hints:
        scope = max(scope, hint.scope)
        if hint.max_age is not None:
            max_age = min(max_age, hint.max_age)
        if hint.stale_while_revalidate is not None:
            stale = min(stale, hint.stale_while_revalidate)
        reads |= hint.reads
    if scope is Scope.NO_STORE:
        return NO_STORE
    if scope is Scope.PRIVATE:
        stale = 0
    return CachePolicy(scope, max_age, stale, frozenset(reads))


# ---------------------------------------------------------------- the table

SEARCH, INVENTORY, CARTS, PRICING, ORDERS, TIMELINE = (
    "search", "inventory", "carts", "pricing", "orders", "timeline",
)  # fmt: skip

# Catalog pages are short-lived in caches on purpose: a revalidation costs a 304, not a query.
CATALOG = CacheHint(Scope.PUBLIC, max_age=5, stale_while_revalidate=30, reads=frozenset({SEARCH}))
STOCK = CacheHint(Scope.PUBLIC, max_age=5, stale_while_revalidate=10, reads=frozenset({INVENTORY}))
CART = CacheHint(Scope.PRIVATE, max_age=0, reads=frozenset({CARTS, PRICING}))
ORDER = CacheHint(Scope.PRIVATE, max_age=0, reads=frozenset({ORDERS}))
STAFF_ONLY = CacheHint(Scope.NO_STORE)
INTROSPECTION = CacheHint(Scope.PUBLIC, max_age=300)

TYPE_HINTS: dict[str, CacheHint] = {
    "Product": CATALOG,
    "ProductVariant": CATALOG,
    "ProductSearchConnection": CATALOG,
    "StockHint": STOCK,
    "Cart": CART,
    "Order": ORDER,
    "OrderConnection": ORDER,
    # node(id) may be any of them: the most restrictive.
    "Node": CacheHint(Scope.PRIVATE, max_age=0, reads=frozenset({SEARCH, CARTS, PRICING, ORDERS})),
    "TimelineConnection": STAFF_ONLY,
    "InventoryLevel": STAFF_ONLY,
    "ProjectionStatus": STAFF_ONLY,
}

FIELD_HINTS: dict[tuple[str, str], CacheHint] = {
    ("Query", "__schema"): INTROSPECTION,
    ("Query", "__type"): INTROSPECTION,
}

CONSISTENT_WITH = "consistentWith"


# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class ConsistencyArgument:
    """A ``consistentWith`` argument: a literal position or a variable, and what it waits for."""

    reads: frozenset[str]
    literal: int | None = None
    variable: str | None = None

    def position(self, variables: Mapping[str, Any] | None) -> int | None:
        if self.variable is None:
            return self.literal
        try:
            return parse_position((variables or {}).get(self.variable))
        except InvalidInputValue:
            return None


@dataclass(frozen=True)
class OperationPlan:
    policy: CachePolicy
    consistency: tuple[ConsistencyArgument, ...] = ()

    def positions_waited_for(self, variables: Mapping[str, Any] | None) -> list[tuple[frozenset[str], int]]:
        """Each distinct position some ``consistentWith`` names, with every read model waiting for it."""
        waiting: dict[int, frozenset[str]] = {}
        for arg in self.consistency:
            position = arg.position(variables)
            if position is not None:
                waiting[position] = waiting.get(position, frozenset()) | arg.reads
        return [(reads, position) for position, reads in waiting.items()]


@dataclass
class _Walk:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    hints: list[CacheHint] = field(default_factory=list)
    consistency: list[ConsistencyArgument] = field(default_factory=list)
    seen_fragments: set[str] = field(default_factory=set)


def plan_operation(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> OperationPlan:
    """The policy of a (valid) operation: the merge of the hints of every field it selects."""
    if operation.operation is not OperationType.QUERY:
        return OperationPlan(NO_STORE)
    root = schema.query_type
    assert root is not None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    walk = _Walk(schema, fragments)
    _selections(walk, root, operation.selection_set, root=True)
    return OperationPlan(merge(walk.hints), tuple(walk.consistency))


def _selections(
    walk: _Walk, parent: GraphQLNamedType, selection_set: SelectionSetNode, *, root: bool
) -> None:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            _field(walk, parent, selection, root=root)
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            target = walk.schema.get_type(condition.name.value) if condition is not None else parent
            _selections(walk, target or parent, selection.selection_set, root=root)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = walk.fragments.get(name)
            if fragment is None or name in walk.seen_fragments:
                continue
            walk.seen_fragments.add(name)
            target = walk.schema.get_type(fragment.type_condition.name.value)
            _selections(walk, target or parent, fragment.selection_set, root=root)


def _field(walk: _Walk, parent: GraphQLNamedType, node: FieldNode, *, root: bool) -> None:
    name = node.name.value
    if name == "__typename":
        return
    hints = [h for h in (FIELD_HINTS.get((parent.name, name)),) if h is not None]
    returned: GraphQLNamedType | None = None
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) and name in parent.fields:
        returned = get_named_type(parent.fields[name].type)
        if (type_hint := TYPE_HINTS.get(returned.name)) is not None:
            hints.append(type_hint)
    if root and not hints:
        hints.append(CacheHint(Scope.NO_STORE))
    walk.hints.extend(hints)
    reads = frozenset().union(*(h.reads for h in hints))
    for argument in node.arguments or ():
        if argument.name.value == CONSISTENT_WITH:
            value = argument.value
            if isinstance(value, VariableNode):
                walk.consistency.append(ConsistencyArgument(reads, variable=value.name.value))
            elif isinstance(value, IntValueNode | StringValueNode) and value.value.isdigit():
                walk.consistency.append(ConsistencyArgument(reads, literal=int(value.value)))
            elif not isinstance(value, NullValueNode):
                walk.hints.append(CacheHint(Scope.NO_STORE))
    if node.selection_set is not None and returned is not None:
        _selections(walk, returned, node.selection_set, root=False)


class OperationPlans:
    """Plans by (document hash, operation name), kept once the operation has passed the edge's
    checks: a revalidation finds what it needs here without parsing or validating again."""

    def __init__(self, schema: GraphQLSchema, size: int = 10_000) -> None:
        self._schema = schema
        self._plans: LRUCache[tuple[str, str | None], OperationPlan] = LRUCache(size)

    def known(self, sha256: str, operation_name: str | None) -> OperationPlan | None:
        return self._plans.get((sha256, operation_name))

    def plan(
        self,
        sha256: str,
        operation_name: str | None,
        document: DocumentNode,
        operation: OperationDefinitionNode,
    ) -> OperationPlan:
        key = (sha256, operation_name)
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = plan_operation(self._schema, document, operation)
        return found
