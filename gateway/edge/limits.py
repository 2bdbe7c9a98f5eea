"""Static operation limits: depth, aliases and root fields, through every kind of fragment.

Named fragments are measured once and reused at every spread (so a chain of
fragments spread twice each costs linear time), and a fragment that spreads
itself, directly or not, contributes nothing the second time round.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from gateway.edge.errors import GatewayError


@dataclass(frozen=True)
class Shape:
    depth: int
    aliases: int
    root_fields: int


@dataclass(frozen=True)
class OperationLimits:
    max_depth: int
    max_aliases: int
    max_root_fields: int


def limit_exceeded(limit: str, maximum: int) -> GatewayError:
    return GatewayError(
        "OPERATION_LIMIT_EXCEEDED",
        f"The operation exceeds the {limit} limit of {maximum}",
        limit=limit,
        maximum=maximum,
    )


@dataclass(frozen=True)
class _Measure:
    depth: int
    aliases: int
    fields: int


class _Analyser:
    def __init__(self, document: DocumentNode, max_depth: int) -> None:
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._max_depth = max_depth
        self._memo: dict[str, _Measure] = {}
        self._active: set[str] = set()

    def measure(self, selection_set: SelectionSetNode, level: int) -> _Measure:
        """``level`` is the depth of the field owning this selection set (0 at the root)."""
        depth = aliases = fields = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if level + 1 > self._max_depth:
                    raise limit_exceeded("depth", self._max_depth)
                fields += 1
                aliases += selection.alias is not None
                if selection.selection_set is not None:
                    inner = self.measure(selection.selection_set, level + 1)
                    depth = max(depth, 1 + inner.depth)
                    aliases += inner.aliases
                else:
                    depth = max(depth, 1)
            else:
                inner = self._fragment(selection, level)
                depth = max(depth, inner.depth)
                aliases += inner.aliases
                fields += inner.fields
        return _Measure(depth, aliases, fields)

    def _fragment(self, node: object, level: int) -> _Measure:
        if isinstance(node, InlineFragmentNode):
            return self.measure(node.selection_set, level)
        assert isinstance(node, FragmentSpreadNode)
        name = node.name.value
        measured = self._memo.get(name)
        if measured is None:
            definition = self._fragments.get(name)
            if definition is None or name in self._active:
                return _Measure(0, 0, 0)
            self._active.add(name)
            try:
                # Measured from level 0 so the result can be reused at any spread.
                measured = self._memo[name] = self.measure(definition.selection_set, 0)
            finally:
                self._active.discard(name)
        if level + measured.depth > self._max_depth:
            raise limit_exceeded("depth", self._max_depth)
        return measured


def analyse(document: DocumentNode, operation: OperationDefinitionNode, limits: OperationLimits) -> Shape:
    """The operation's shape; raises OPERATION_LIMIT_EXCEEDED (limit "depth") as soon as it is too deep."""
    try:
        measured = _Analyser(document, limits.max_depth).measure(operation.selection_set, 0)
    except RecursionError:
        raise limit_exceeded("depth", limits.max_depth) from None
    return Shape(measured.depth, measured.aliases, measured.fields)


def check(shape: Shape, limits: OperationLimits) -> None:
    if shape.depth > limits.max_depth:
        raise limit_exceeded("depth", limits.max_depth)
    if shape.aliases > limits.max_aliases:
        raise limit_exceeded("aliases", limits.max_aliases)
    if shape.root_fields > limits.max_root_fields:
        raise limit_exceeded("rootFields", limits.max_root_fields)
