"""Completers of the plain-field executor kept across requests of one cached document."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

from graphql import GraphQLOutputType, Node

Completer = Callable[[Any], Any]
_Key = tuple[int, tuple[int, ...]]


class _Shared:
    """The completers of one operation, kept while the operation lives.

    Which sub-fields a selection collects depends on the document and the runtime type, and
    on variables only through directives (``@skip``, ``@include``, ``@defer``); for a
    document without any directive it is the same on every request. Keyed by the type and
    the field nodes: the record holds the fragment definitions (the operation holds the rest
    of the nodes) and each entry its type, so none of those ids can be reused meanwhile.
    """

    __slots__ = ("completers", "fragments")

    def __init__(self, fragments: tuple[Node, ...]) -> None:
        self.fragments = fragments
        self.completers: dict[_Key, tuple[GraphQLOutputType, Completer | None]] = {}


# id(operation) -> its record, or None when its completers may not be shared. An entry goes
# when its operation is collected (a cached document lives as long as the document cache
# keeps it; a document parsed for one request, as long as that request).
_by_operation: dict[int, _Shared | None] = {}


def shared_completer(
    operation: Any,
    fragments: Mapping[str, Any],
    type_: GraphQLOutputType,
    details: Any,
    make: Callable[[GraphQLOutputType, Any], Completer | None],
) -> Completer | None:
    """The completer for ``type_`` selected by ``details``, made once per operation when it
    can be shared, else made for this request."""
    key = id(operation)
    shared = _by_operation[key] if key in _by_operation else _record(operation, fragments)
    if shared is None:
        return make(type_, details)
    entry_key = (id(type_), tuple(id(detail.node) for detail in details))
    known = shared.completers.get(entry_key)
    if known is not None and known[0] is type_:
        return known[1]
    complete = make(type_, details)
    shared.completers[entry_key] = (type_, complete)
    return complete


def _record(operation: Any, fragments: Mapping[str, Any]) -> _Shared | None:
    definitions = tuple(fragment.definition for fragment in fragments.values())
    # Fragment variables (an experimental feature) could steer directives: never shared.
    free = not any(fragment.variable_signatures for fragment in fragments.values()) and not any(
        _has_directive(node) for node in (operation, *definitions)
    )
    shared = _Shared(definitions) if free else None
    try:
        # Called while the operation is being collected, before its id can be reused.
        weakref.finalize(operation, _by_operation.pop, id(operation), None)
    except TypeError:  # not weakly referenceable: nothing is kept for it
        return shared
    _by_operation[id(operation)] = shared
    return shared


def _has_directive(node: Node) -> bool:
    if getattr(node, "directives", None):
        return True
    for key in node.keys:
        child = getattr(node, key, None)
        if isinstance(child, Node) and _has_directive(child):
            return True
        if isinstance(child, tuple | list) and any(isinstance(c, Node) and _has_directive(c) for c in child):
            return True
    return False
