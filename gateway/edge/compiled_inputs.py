"""Input objects built by a converter compiled once per input type, not walked per request.

Strawberry builds an input object's value by walking its type on every request: for each
field it resolves the field's type, asks whether it is a Maybe, an Optional, a list, a
scalar, an enum, a lazy type or another input, and calls itself again. For a checkout's
input (an address, a payment, a cart id and a few more) that was about 150 µs of CPU.

The answers depend on the type only, so each input type here gets, once, a list of
(GraphQL name, Python name, converter) and installs it as the definition's ``from_input``
hook, which Strawberry calls instead of its walk. The converters do what the walk does:
leaves (scalars and enums, already parsed by graphql-core) are taken as they are, lists
are copied, null stays null, and a field the caller omitted is None when it has no
default, else left to the class's default.

A type with anything the walk treats specially (``Maybe``, relay's ``GlobalID``, a type
that already builds itself) is left to Strawberry, and so is every input type that holds
one: whether the walk and these converters agree is checked type by type in the tests.
The hook belongs to the input class, shared by every schema built over it: schemas that
name its fields differently are refused at build (see ``CompiledFromInput``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

from strawberry import Schema
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

Convert = Callable[[Any], Any]
# An input class's converter; the class to build may be a subclass of the one compiled.
Builder = Callable[[Mapping[str, Any], type], Any]
FromInput = Callable[[type, Mapping[str, Any], InputContext], Any]


class _NotCompiled(Exception):
    """This type (or one inside it) is left to Strawberry's own conversion."""


def _leaf(value: Any) -> Any:
    return value


def _absent(value: Any) -> bool:
    """Null or unset: taken as it is, like Strawberry does, whatever the type."""
    return value is None or value is UNSET


def _copied_list(value: Any) -> Any:
    # graphql-core gives every request that omits a list the same default object.
    return value if _absent(value) else list(value)


def _optional(convert: Convert) -> Convert:
    def optional(value: Any) -> Any:
        return value if _absent(value) else convert(value)

    return optional


def _list_of(convert: Convert) -> Convert:
    def converted_list(value: Any) -> Any:
        return value if _absent(value) else [convert(item) for item in value]

    return converted_list


def _compilable_hook(hook: FromInput | None) -> bool:
    return hook is None or isinstance(hook, CompiledFromInput)


def _nested(build: Builder, cls: type) -> Convert:
    def nested(value: Any) -> Any:
        return build(value, cls)

    return nested


class _Compiler:
    def __init__(self, schema: Schema) -> None:
        self._schema = schema
        self._scalars = schema.schema_converter.scalar_registry
        self._names = schema.config.name_converter
        # In the order compiling began: a class compiled inside another one's compilation may
        # use that one's converter before it is complete.
        self._builders: dict[type, Builder] = {}
        self._refused: set[type] = set()

    def _is_leaf(self, type_: object) -> bool:
        # Relay's GlobalID is in the scalar registry, but Strawberry builds an object from it.
        if type_ is GlobalID:
            return False
        return is_scalar(type_, self._scalars) or isinstance(type_, StrawberryEnumDefinition)

    def converter(self, type_: StrawberryType | type) -> Convert:
        if isinstance(type_, StrawberryMaybe) or type_ is GlobalID:
            raise _NotCompiled
        if isinstance(type_, LazyType):
            return self.converter(type_.resolve_type())
        if isinstance(type_, StrawberryOptional):
            inner = type_.of_type
            return _leaf if self._is_leaf(inner) else _optional(self.converter(inner))
        if isinstance(type_, StrawberryList):
            item = type_.of_type
            while isinstance(item, StrawberryOptional | LazyType):
                item = item.of_type if isinstance(item, StrawberryOptional) else item.resolve_type()
            if self._is_leaf(item):
                return _copied_list
            return _list_of(self.converter(type_.of_type))
        if self._is_leaf(type_) or has_enum_definition(type_):
            return _leaf
        if has_object_definition(type_) and isinstance(type_, type):
            return _nested(self.builder(type_), type_)
        raise _NotCompiled

    def builder(self, cls: type) -> Builder:
        """The converter of one input class, compiled on first use (recursive types included)."""
        if cls in self._refused:
            raise _NotCompiled
        built = self._builders.get(cls)
        if built is not None:
            return built
        definition: StrawberryObjectDefinition = cls.__strawberry_definition__  # type: ignore[attr-defined]
        if not definition.is_input or not _compilable_hook(definition.from_input):
            self._refused.add(cls)
            raise _NotCompiled
        fields: list[tuple[str, str, Convert]] = []
        implicit_none: dict[str, None] = {}

        def build(value: Mapping[str, Any], target: type = cls) -> Any:
            kwargs: dict[str, Any] = dict(implicit_none)
            for graphql_name, python_name, convert in fields:
                if graphql_name in value:
                    kwargs[python_name] = convert(value[graphql_name])
            return target(**kwargs)

        # Registered before its fields are compiled, so an input that holds itself finds it.
        self._builders[cls] = build
        try:
            for field in definition.fields:
                field_type = field.resolve_type(type_definition=definition)
                fields.append((self._names.from_field(field), field.python_name, self.converter(field_type)))
                if field.default_value is MISSING and field.default_factory is MISSING:
                    implicit_none[field.python_name] = None
        except _NotCompiled:
            # Refused, and so is everything compiled since it began (they may hold its half-built
            # converter): those compile again when next asked for, and then meet the refusal.
            begun = list(self._builders)
            for later in begun[begun.index(cls) :]:
                del self._builders[later]
            self._refused.add(cls)
            raise
        return build

    def field_names(self, cls: type) -> tuple[str, ...]:
        definition: StrawberryObjectDefinition = cls.__strawberry_definition__  # type: ignore[attr-defined]
        return tuple(self._names.from_field(field) for field in definition.fields)


class SharedInputConflict(ValueError):
    """Two schemas name the fields of a shared input type differently: one hook cannot serve both."""


class CompiledFromInput:
    """The ``from_input`` hook installed here, with the GraphQL field names it was compiled for.

    The hook sits on the input type's definition, which every schema built over that class
    shares: a later schema naming the fields alike compiles again, one naming them otherwise
    is refused (``SharedInputConflict``) rather than served with the wrong names.
    """

    def __init__(self, build: Builder, names: tuple[str, ...]) -> None:
        self._build = build
        self.names = names

    def __call__(self, cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        return self._build(value, cls)


def compile_inputs(schema: Schema) -> list[str]:
    """Install a compiled ``from_input`` on every input type of ``schema`` that can have one.

    Returns the names of the input types left to Strawberry's own conversion. Raises
    ``SharedInputConflict``, having installed nothing, when another schema over the same
    classes names their fields otherwise.
    """
    compiler = _Compiler(schema)
    definitions = {
        name: concrete.definition
        for name, concrete in sorted(schema.schema_converter.type_map.items())
        if isinstance(concrete.definition, StrawberryObjectDefinition) and concrete.definition.is_input
    }
    names = {name: compiler.field_names(definition.origin) for name, definition in definitions.items()}
    # Every type checked before any hook changes: compiling one type compiles those it holds.
    for name, definition in definitions.items():
        installed = definition.from_input
        if isinstance(installed, CompiledFromInput) and installed.names != names[name]:
            raise SharedInputConflict(
                f"input {name} is shared with a schema that names its fields {list(installed.names)}, "
                f"not {list(names[name])}"
            )
    left: list[str] = []
    for name, definition in definitions.items():
        try:
            build = compiler.builder(definition.origin)
        except _NotCompiled:
            left.append(name)
            continue
        definition.from_input = CompiledFromInput(build, names[name])
    return left
