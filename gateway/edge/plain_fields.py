"""Field execution that skips graphql-core's per-field machinery for plain attributes.

Most fields of a response are read straight off a Strawberry object (a product's title,
its variants, a variant's price and that price's amount). For each, graphql-core builds
a resolve-info object, calls Strawberry's resolver wrapper, checks for awaitables and
walks its completion steps: on a page of ten products with facets that is about three
hundred fields and most of the request's CPU.

A field is plain when it is a Strawberry field with no resolver, no permission and no
field extension, and its selection is plain all the way down: leaves, lists, and object
types whose selected fields are all plain. Whether a selection is plain depends on the
document only, so it is known before any value is read; a plain selection calls no
resolver and has no side effect. Its value is completed here directly: attributes read,
leaves coerced with the type's own ``coerce_output_value``.

Anything unusual in the values (a missing attribute, null for a non-null type, a value a
scalar rejects, an awaitable, a non-list for a list, an object of the wrong type) makes
the whole field take the standard path instead, which reads the same attributes again
and produces the exact value or error it always did. So do directives on a field node,
deferred fragments, abstract types and field middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    is_leaf_type,
)
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from gateway.edge.selection_cache import Completer, shared_completer

# Types whose values are never awaitable: no awaitable check for them.
_PLAIN_VALUES = frozenset({str, int, float, bool})
_TYPENAME = "__typename"


class _Standard:
    """Marker: this field needs the standard execution."""


_STANDARD = _Standard()


class _Read(NamedTuple):
    attribute: str
    read: Any  # Strawberry's default resolver: (source, attribute) -> value


# id(field definition) -> (the definition, how to read it or None). The definition is kept
# so that an id reused by another schema's field after this one is freed never matches.
_reads: dict[int, tuple[GraphQLField, _Read | None]] = {}


def _read_of(field_def: GraphQLField) -> _Read | None:
    known = _reads.get(id(field_def))
    if known is not None and known[0] is field_def:
        return known[1]
    read = _make_read(field_def)
    _reads[id(field_def)] = (field_def, read)
    return read


def _make_read(field_def: GraphQLField) -> _Read | None:
    if not getattr(field_def.resolve, "_is_default", False):
        return None
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None
    if definition.python_name is None:
        return None
    return _Read(definition.python_name, definition.default_resolver)


def _strawberry_type_check(object_type: GraphQLObjectType) -> bool:
    """Whether the type's ``is_type_of`` (if any) is Strawberry's own, which ignores its info."""
    check = object_type.is_type_of
    return check is None or check.__qualname__.endswith("_get_is_type_of.<locals>.is_type_of")


class PlainFieldExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (id(type), id(field details)) -> (the details, the completer or None if not plain).
        # The details are kept so that their id is not reused during this execution (the
        # schema keeps its types).
        self._completers: dict[tuple[int, int], tuple[Any, Completer | None]] = {}

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        # Strawberry always passes a manager; it wraps resolvers only when an extension resolves.
        manager = self.middleware_manager
        if manager is None or not manager.middlewares:
            completed = self._plain_field(parent_type, source, field_details_list)
            if completed is not _STANDARD:
                return completed
        return super().execute_field(parent_type, source, field_details_list, path, position_context)

    def _plain_field(self, parent_type: GraphQLObjectType, source: Any, field_details_list: Any) -> Any:
        field_def = self.schema.get_field(parent_type, field_details_list[0].node.name.value)
        if field_def is None:
            return _STANDARD
        read = _read_of(field_def)
        if read is None:
            return _STANDARD
        complete = self._completer(field_def.type, field_details_list)
        if complete is None:
            return _STANDARD
        try:
            value = read.read(source, read.attribute)
        except Exception:
            return _STANDARD
        return complete(value)

    def _completer(self, type_: GraphQLOutputType, details: Any) -> Completer | None:
        """Completes a value of ``type_`` selected by ``details``; None if that is not plain."""
        key = (id(type_), id(details))
        known = self._completers.get(key)
        if known is not None:
            return known[1]
        complete = shared_completer(self.operation, self.fragments, type_, details, self._make_completer)
        self._completers[key] = (details, complete)
        return complete

    def _make_completer(self, type_: GraphQLOutputType, details: Any) -> Completer | None:
        for detail in details:
            if detail.node.directives:
                return None
        if isinstance(type_, GraphQLNonNull):
            inner = self._completer(type_.of_type, details)
            return None if inner is None else _non_null(inner)
        if isinstance(type_, GraphQLList):
            inner = self._completer(type_.of_type, details)
            return None if inner is None else _list_of(inner)
        if is_leaf_type(type_):
            return _leaf(type_, self.is_awaitable)
        if isinstance(type_, GraphQLObjectType) and _strawberry_type_check(type_):
            return self._object_completer(type_, details)
        return None

    def _object_completer(self, object_type: GraphQLObjectType, details: Any) -> Completer | None:
        grouped, deferred, forbidden = self.collect_subfields(object_type, details)
        if deferred or forbidden:
            return None
        fields: list[tuple[str, str, Any, Completer]] = []
        for response_name, sub_details in grouped.items():
            name = sub_details[0].node.name.value
            if name == _TYPENAME:
                if any(d.node.directives for d in sub_details):
                    return None
                fields.append((response_name, "", None, _constant(object_type.name)))
                continue
            field_def = object_type.fields.get(name)
            read = None if field_def is None else _read_of(field_def)
            complete = None if field_def is None else self._completer(field_def.type, sub_details)
            if read is None or complete is None:
                return None
            fields.append((response_name, read.attribute, read.read, complete))
        return _object(object_type, tuple(fields), self.is_awaitable)


def _unusual(value: Any, is_awaitable: Callable[[Any], bool]) -> bool:
    """An exception or an awaitable in place of a value: the standard path handles those."""
    return type(value) not in _PLAIN_VALUES and (isinstance(value, Exception) or is_awaitable(value))


def _non_null(inner: Completer) -> Completer:
    def complete(value: Any) -> Any:
        completed = inner(value)
        return _STANDARD if completed is None else completed

    return complete


def _list_of(inner: Completer) -> Completer:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if not isinstance(value, list | tuple):
            return _STANDARD
        items = []
        for item in value:
            completed = inner(item)
            if completed is _STANDARD:
                return _STANDARD
            items.append(completed)
        return items

    return complete


def _leaf(leaf: GraphQLLeafType, is_awaitable: Callable[[Any], bool]) -> Completer:
    coerce = leaf.coerce_output_value

    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if _unusual(value, is_awaitable):
            return _STANDARD
        try:
            coerced = coerce(value)
        except Exception:
            return _STANDARD
        return _STANDARD if coerced is None or coerced is Undefined else coerced

    return complete


def _constant(value: str) -> Completer:
    return lambda _source: value


def _object(
    object_type: GraphQLObjectType,
    fields: tuple[tuple[str, str, Any, Completer], ...],
    is_awaitable: Callable[[Any], bool],
) -> Completer:
    # Strawberry's own check (``_strawberry_type_check``) never looks at its resolve info.
    check: Any = object_type.is_type_of

    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if _unusual(value, is_awaitable) or (check is not None and check(value, None) is not True):
            return _STANDARD
        completed: dict[str, Any] = {}
        for response_name, attribute, read, complete_field in fields:
            if read is None:
                completed[response_name] = complete_field(value)
                continue
            try:
                raw = read(value, attribute)
            except Exception:
                return _STANDARD
            result = complete_field(raw)
            if result is _STANDARD:
                return _STANDARD
            completed[response_name] = result
        return completed

    return complete
