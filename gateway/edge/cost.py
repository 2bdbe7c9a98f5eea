"""Static query cost: how many objects an operation may return, before running it.

Every field of an object, interface or union type costs one object per
parent; a list multiplies by its size: the field's ``first`` argument (from
the literal, the variables or the schema default), else the ``first`` of the
connection it belongs to (``products(first: 20) { edges ... }``), else
``default_list_size``. Scalars and ``__typename`` are free. Mutation root
fields add ``mutation_cost`` each. Introspection lists count as size 1: they
are bounded by the schema itself and their nesting by MaxIntrospectionDepthRule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
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
class CostModel:
    max_cost: int
    default_list_size: int
    mutation_cost: int


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
    ) -> None:
        self._schema = schema
        self._variables = dict(variables)
        self._model = model
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._memo: dict[tuple[str, int | None], int] = {}
        self._active: set[str] = set()

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
        is_list = is_list_type(get_nullable_type(definition.type))
        if parent.name.startswith("__") or node.name.value.startswith("__"):
            size = 1
        elif is_list:
            size = first if first is not None else connection_size or self._model.default_list_size
        else:
            size = 1
        children = 0
        if node.selection_set is not None:
            children = self.selection_set(node.selection_set, named, None if is_list else first)
        return weight + size * (1 + children)

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
) -> int:
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    values = dict(variables or {})
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in values and definition.default_value is not None:
            values[name] = value_from_ast_untyped(definition.default_value)
    calculator = _Calculator(schema, document, values, model)
    try:
        return calculator.selection_set(operation.selection_set, root, None)
    except RecursionError:
        # Depth limits run first, so only a pathological document gets here.
        return model.max_cost + 1


def actual_cost(data: object, mutation_fields: int, model: CostModel) -> int:
    """Objects actually returned (the root excluded), plus the weight of the mutations run."""
    count = 0
    stack: list[object] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            count += 1
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return max(0, count - 1) + mutation_fields * model.mutation_cost
