"""Compiled input converters build exactly what Strawberry's own walk builds, type by type."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
import strawberry
import strawberry.relay
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryObjectDefinition

from gateway.edge.compiled_inputs import SharedInputConflict
from gateway.edge.execution import GatewaySchema, execute_checked
from gateway.http.app import build_schema

SCHEMA = build_schema()
_SCALAR_SAMPLES: dict[str, object] = {"String": "text", "ID": "id-1", "Int": 3, "Float": 1.5, "Boolean": True}


def _input_definitions(schema: strawberry.Schema) -> dict[str, StrawberryObjectDefinition]:
    return {
        name: concrete.definition
        for name, concrete in schema.schema_converter.type_map.items()
        if isinstance(concrete.definition, StrawberryObjectDefinition) and concrete.definition.is_input
    }


@contextmanager
def _strawberry_walk(schema: strawberry.Schema) -> Iterator[None]:
    """Strawberry's own conversion: every compiled hook taken off for the block."""
    definitions = list(_input_definitions(schema).values())
    hooks = [definition.from_input for definition in definitions]
    for definition in definitions:
        definition.from_input = None
    try:
        yield
    finally:
        for definition, hook in zip(definitions, hooks, strict=True):
            definition.from_input = hook


def _sample(type_: GraphQLInputType, shape: str, depth: int = 0) -> object:
    """A coerced value of ``type_``: ``full`` sets every field, ``required`` only non-null ones,
    ``nulls`` sets the nullable ones to null."""
    if isinstance(type_, GraphQLNonNull):
        return _sample(type_.of_type, shape, depth)
    if isinstance(type_, GraphQLList):
        return [_sample(type_.of_type, shape, depth + 1) for _ in range(2)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values.values())).value
    if isinstance(type_, GraphQLScalarType):
        return _SCALAR_SAMPLES.get(type_.name, object())
    assert isinstance(type_, GraphQLInputObjectType)
    value: dict[str, object] = {}
    for name, field in type_.fields.items():
        required = isinstance(field.type, GraphQLNonNull)
        if required or shape == "full":
            value[name] = _sample(field.type, shape, depth + 1)
        elif shape == "nulls":
            value[name] = None
    return value


def _plain(value: Any) -> Any:
    """A converted value as comparable data: the class of every input object included."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return (type(value).__name__, fields)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def test_every_input_type_of_the_gateway_is_compiled() -> None:
    assert SCHEMA.inputs_left_to_strawberry == []
    compiled = {name for name, d in _input_definitions(SCHEMA).items() if d.from_input is not None}
    assert compiled == set(_input_definitions(SCHEMA))
    assert {"CheckoutInput", "CartCreateInput", "AddressInput", "ProductFilter"} <= compiled


@pytest.mark.parametrize("shape", ["full", "required", "nulls"])
@pytest.mark.parametrize("name", sorted(_input_definitions(SCHEMA)))
def test_a_compiled_input_equals_strawberrys_own_conversion(name: str, shape: str) -> None:
    definition = _input_definitions(SCHEMA)[name]
    graphql_type = SCHEMA._schema.type_map[name]
    assert isinstance(graphql_type, GraphQLInputObjectType)
    value = _sample(graphql_type, shape)
    registry, config = SCHEMA.schema_converter.scalar_registry, SCHEMA.config

    compiled = convert_argument(value, definition.origin, registry, config)
    with _strawberry_walk(SCHEMA):
        walked = convert_argument(value, definition.origin, registry, config)

    assert type(compiled) is definition.origin
    assert _plain(compiled) == _plain(walked)


def test_a_list_is_copied_not_shared_with_the_request() -> None:
    registry, config = SCHEMA.schema_converter.scalar_registry, SCHEMA.config
    lines = [{"sku": "TEE", "quantity": 1}]
    cart: Any = convert_argument(
        {"lines": lines}, _input_definitions(SCHEMA)["CartCreateInput"].origin, registry, config
    )
    assert cart.lines is not lines and cart.lines[0].sku == "TEE"
    brands = ["Acme", "Zed"]
    product_filter = _input_definitions(SCHEMA)["ProductFilter"].origin
    built: Any = convert_argument({"brands": brands}, product_filter, registry, config)
    assert built.brands == brands and built.brands is not brands
    assert built.categories is None and built.in_stock_only is None


@strawberry.input
class TreeInput:
    label: str
    children: list[TreeInput] | None = None


@strawberry.input
class WithMaybe:
    note: strawberry.Maybe[str]


@strawberry.input
class HoldsMaybe:
    inner: WithMaybe
    label: str = "x"


@strawberry.type
class _Query:
    @strawberry.field
    def tree(self, tree: TreeInput) -> str:
        return tree.label

    @strawberry.field
    def maybe(self, value: HoldsMaybe) -> str:
        return value.label


def test_a_recursive_input_compiles_and_maybe_is_left_to_strawberry() -> None:
    schema = GatewaySchema(query=_Query)
    assert schema.inputs_left_to_strawberry == ["HoldsMaybe", "WithMaybe"]
    result = schema.execute_sync(
        '{ tree(tree: {label: "root", children: [{label: "a", children: [{label: "b"}]}]}) '
        'maybe(value: {inner: {note: "n"}}) }'
    )
    assert result.errors is None and result.data == {"tree": "root", "maybe": "x"}
    tree = _input_definitions(schema)["TreeInput"]
    built = convert_argument(
        {"label": "r", "children": [{"label": "c"}]},
        tree.origin,
        schema.schema_converter.scalar_registry,
        schema.config,
    )
    assert isinstance(built, TreeInput) and built.children == [TreeInput(label="c")]


@strawberry.input
class NoteHolder:
    other: NoteHolderRef | None = None
    note: strawberry.Maybe[str] = None


@strawberry.input
class NoteHolderRef:
    holder: NoteHolder | None = None


@strawberry.input
class ByGlobalId:
    node: strawberry.relay.GlobalID | None = None


@strawberry.input
class Tagged:
    first_tag: str = "x"
    tags: list[str] = strawberry.field(default_factory=list)


@strawberry.type
class _MoreQuery:
    @strawberry.field
    def note(self, value: NoteHolderRef) -> str:
        holder = value.holder
        return "none" if holder is None or holder.note is None else repr(holder.note)

    @strawberry.field
    def node(self, value: ByGlobalId) -> str:
        return type(value.node).__name__

    @strawberry.field
    def tags(self, value: Tagged) -> list[str]:
        return value.tags


def test_types_that_hold_a_refused_one_are_refused_too_even_when_compiled_inside_it() -> None:
    # NoteHolder starts compiling, compiles NoteHolderRef inside it (which then uses NoteHolder's
    # unfinished converter), and only afterwards meets its Maybe field.
    schema = GatewaySchema(query=_MoreQuery)
    assert {"NoteHolder", "NoteHolderRef", "ByGlobalId"} <= set(schema.inputs_left_to_strawberry)
    result = schema.execute_sync(
        '{ note(value: {holder: {note: "n"}}) node(value: {node: "VXNlcjox"}) tags(value: {}) '
        'more: tags(value: {tags: ["a", "b"]}) }'
    )
    assert result.errors is None
    assert result.data == {"note": "Some('n')", "node": "GlobalID", "tags": [], "more": ["a", "b"]}


@strawberry.input
class AOuter:
    inner: Tagged


@strawberry.type
class _OuterQuery:
    @strawberry.field
    def first(self, value: AOuter) -> str:
        return value.inner.first_tag


def test_a_schema_naming_shared_input_fields_otherwise_is_refused_and_changes_nothing() -> None:
    camel = GatewaySchema(query=_OuterQuery)  # firstTag
    with pytest.raises(SharedInputConflict, match="firstTag"):
        # AOuter sorts first and names its one field alike in both: it must not be recompiled
        # (with the nested Tagged under the other names) before Tagged's conflict is found.
        GatewaySchema(query=_OuterQuery, config=StrawberryConfig(auto_camel_case=False))
    result = camel.execute_sync('{ first(value: {inner: {firstTag: "y"}}) }')
    assert result.errors is None and result.data == {"first": "y"}


def test_the_gateway_schema_takes_no_other_extension_nor_directive() -> None:
    class Other(SchemaExtension):
        pass

    with pytest.raises(ValueError, match="no other extension"):
        GatewaySchema(query=_MoreQuery, extensions=[Other])


async def test_an_exception_from_execution_itself_reaches_the_caller() -> None:
    # No document at all: graphql-core fails before any resolver runs (the pipeline never does
    # this). It is not turned into an error result: the view answers 500 for it.
    with pytest.raises(AttributeError):
        await execute_checked(
            SCHEMA,
            cast(Any, None),
            variables=None,
            operation_name=None,
            context=cast(Any, None),
            extensions=None,
        )
