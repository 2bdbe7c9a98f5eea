"""Query cost: how many objects an operation may return (before running it) and did return.

Every field of an object, interface or union type costs one object per
parent; a list multiplies by its size: the field's ``first`` argument (from
the literal, the variables or the schema default, capped at the connection's
maximum), else the ``first`` of the connection it belongs to
(``products(first: 20) { edges ... }``), else the size declared for the field
(``list_sizes``: realistic for the estimate, the maximum for the worst case),
else ``default_list_size``. Scalars and ``__typename`` are free. Mutation root
fields add ``mutation_cost`` each. Introspection lists count as size 1: they
are bounded by the schema itself and their nesting by MaxIntrospectionDepthRule;
the actual cost counts them the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    is_list_type,
    value_from_ast,
    value_from_ast_untyped,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef

from gateway.edge.errors import GatewayError


@dataclass(frozen=True)
class DeclaredSize:
    expected: int
    maximum: int


# (type name, field name) -> the declared size of that list field, or None.
ListSizes = Callable[[str, str], DeclaredSize | None]


def _undeclared(_type: str, _field: str) -> DeclaredSize | None:
    return None


@dataclass(frozen=True)
class CostModel:
    max_cost: int
    default_list_size: int
    mutation_cost: int
    list_sizes: ListSizes = _undeclared
    # (type name, field name) of a connection field -> the largest ``first`` it serves.
    first_max: Mapping[tuple[str, str], int] = field(default_factory=dict)


def cost_exceeded(cost: int, maximum: int) -> GatewayError:
    return GatewayError(
        "QUERY_COST_EXCEEDED",
        f"The query cost {cost} exceeds the maximum of {maximum}",
        cost=cost,
        maximumCost=maximum,
    )


class _Calculator:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any],
        model: CostModel,
        worst_case: bool = False,
    ) -> None:
        self._schema = schema
        self._worst_case = worst_case
        self._variables = dict(variables)
        self._model = model
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._memo: dict[tuple[str, int | None], int] = {}
        self._active: set[str] = set()
        # The variables a ``first`` argument took its value from: all that the cost depends on
        # besides the document (the same names for any values, as every field is visited).
        self.variables_read: set[str] = set()

    def selection_set(
        self, node: SelectionSetNode, parent: GraphQLNamedType, connection_size: int | None
    ) -> int:
        total = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, connection_size)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self._schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, target or parent, connection_size)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread(selection.name.value, connection_size)
        return total

    def _spread(self, name: str, connection_size: int | None) -> int:
        key = (name, connection_size)
        if key in self._memo:
            return self._memo[key]
        definition = self._fragments.get(name)
        if definition is None or name in self._active:
            return 0
        target = self._schema.get_type(definition.type_condition.name.value)
        if target is None:
            return 0
        self._active.add(name)
        try:
            cost = self._memo[key] = self.selection_set(definition.selection_set, target, connection_size)
        finally:
            self._active.discard(name)
        return cost

    def _field(self, node: FieldNode, parent: GraphQLNamedType, connection_size: int | None) -> int:
        definition = self._definition(node.name.value, parent)
        if definition is None:
            return 0
        weight = self._model.mutation_cost if parent is self._schema.mutation_type else 0
        named = get_named_type(definition.type)
        if not is_composite_type(named):
            return weight
        first = self._first(node, definition)
        if first is not None:
            cap = self._model.first_max.get((parent.name, node.name.value))
            first = first if cap is None else min(first, cap)
        is_list = is_list_type(get_nullable_type(definition.type))
        if parent.name.startswith("__") or node.name.value.startswith("__"):
            size = 1
        elif is_list:
            size = first if first is not None else connection_size or self._declared(parent, node)
        else:
            size = 1
        children = 0
        if node.selection_set is not None:
            children = self.selection_set(node.selection_set, named, None if is_list else first)
        return weight + size * (1 + children)

    def _declared(self, parent: GraphQLNamedType, node: FieldNode) -> int:
        declared = self._model.list_sizes(parent.name, node.name.value)
        if declared is None:
            return self._model.default_list_size
        return declared.maximum if self._worst_case else declared.expected

    def _definition(self, name: str, parent: GraphQLNamedType) -> GraphQLField | None:
        if name == "__schema" and parent is self._schema.query_type:
            return SchemaMetaFieldDef
        if name == "__type" and parent is self._schema.query_type:
            return TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            field: GraphQLField | None = parent.fields.get(name)
            return field
        return None

    def _first(self, node: FieldNode, definition: GraphQLField) -> int | None:
        argument = definition.args.get("first")
        if argument is None:
            return None
        value: Any = Undefined
        for arg in node.arguments or ():
            if arg.name.value == "first":
                if isinstance(arg.value, VariableNode):
                    self.variables_read.add(arg.value.name.value)
                value = value_from_ast(arg.value, argument.type, self._variables)
        if value is Undefined or value is None:
            value = argument.default_value
        return max(0, value) if isinstance(value, int) and not isinstance(value, bool) else None


def static_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
    model: CostModel,
    *,
    worst_case: bool = False,
    known: KnownCosts | None = None,
) -> int:
    """The estimate (declared realistic list sizes), or with ``worst_case`` the bound (their maxima).

    ``known``: the costs of this operation (of this document, with this model) already
    computed, by the values of the variables they depend on; looked up and filled in.
    """
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    values = dict(variables or {})
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in values and definition.default_value is not None:
            values[name] = value_from_ast_untyped(definition.default_value)
    if known is not None and (cost := known.lookup(values, worst_case)) is not None:
        return cost
    calculator = _Calculator(schema, document, values, model, worst_case)
    try:
        cost = calculator.selection_set(operation.selection_set, root, None)
    except RecursionError:
        # Depth limits run first, so only a pathological document gets here.
        return model.max_cost + 1
    if known is not None:
        known.remember(calculator.variables_read, values, worst_case, cost)
    return cost


# Costs kept per operation: one per combination of the values its ``first`` variables take.
_KNOWN_PER_OPERATION = 64


@dataclass
class KnownCosts:
    """The static costs of one operation, by the values of the variables its ``first`` arguments read."""

    variables: tuple[str, ...] | None = None  # None until a cost is known
    costs: dict[tuple[object, ...], int] = field(default_factory=dict)

    def key(self, values: Mapping[str, Any], worst_case: bool) -> tuple[object, ...] | None:
        """None (not kept) unless every value read is an int, null or absent: ``1.0`` and ``True``
        equal ``1`` as keys but are not numbers to ``_first``, and a list is no key at all."""
        if self.variables is None:
            return None
        read = tuple(values.get(name, Undefined) for name in self.variables)
        if not all(type(value) is int or value is None or value is Undefined for value in read):
            return None
        return (worst_case, *read)

    def lookup(self, values: Mapping[str, Any], worst_case: bool) -> int | None:
        key = self.key(values, worst_case)
        return None if key is None else self.costs.get(key)

    def remember(self, read: set[str], values: Mapping[str, Any], worst_case: bool, cost: int) -> None:
        self.variables = tuple(sorted(read))
        key = self.key(values, worst_case)
        if key is not None and len(self.costs) < _KNOWN_PER_OPERATION:
            self.costs[key] = cost


def actual_cost(
    data: object, mutation_fields: int, model: CostModel, introspection: Mapping[str, int] | None = None
) -> int:
    """Objects actually returned (the root excluded), plus the weight of the mutations run.

    ``introspection`` maps the response keys of root introspection fields to their static
    cost, which stands in for what they returned (their lists count as size 1 in both).
    """
    weight = mutation_fields * model.mutation_cost
    if not isinstance(data, dict):
        return weight
    counted = introspection or {}
    count = sum(counted.values())
    stack: list[object] = [value for key, value in data.items() if key not in counted]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            count += 1
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count + weight


# Codes of a root field refused before it ran (its caller may not run it): no work to charge for.
_REFUSED_CODES = frozenset({"FORBIDDEN", "UNAUTHENTICATED"})


def refused_root_fields(errors: Sequence[GraphQLError] | None) -> int:
    """How many root fields (by response key) were refused before they ran."""
    return len(
        {
            error.path[0]
            for error in errors or ()
            if error.path is not None
            and len(error.path) == 1
            and isinstance(error.original_error, GatewayError)
            and error.original_error.code in _REFUSED_CODES
        }
    )


def introspection_costs(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    model: CostModel,
) -> dict[str, int]:
    """Static cost of each root ``__schema``/``__type`` field, by response key."""
    if operation.operation is not OperationType.QUERY:
        return {}
    root = schema.query_type
    assert root is not None
    calculator = _Calculator(schema, document, {}, model)
    costs: dict[str, int] = {}
    for node in _root_fields(document, operation.selection_set, set()):
        if node.name.value in {"__schema", "__type"}:
            key = node.alias.value if node.alias else node.name.value
            costs[key] = costs.get(key, 0) + calculator.selection_set(
                SelectionSetNode(selections=(node,)), root, None
            )
    return costs


def _root_fields(document: DocumentNode, node: SelectionSetNode, seen: set[str]) -> list[FieldNode]:
    found: list[FieldNode] = []
    for selection in node.selections:
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found.extend(_root_fields(document, selection.selection_set, seen))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            for definition in document.definitions:
                if (
                    isinstance(definition, FragmentDefinitionNode)
                    and definition.name.value == selection.name.value
                ):
                    found.extend(_root_fields(document, definition.selection_set, seen))
    return found
