"""Which fields a resolver's caller selected on its result, one level down.

For a resolver whose store call can leave out work nobody asked for (a search's facets and
exact total). Reads graphql-core's field nodes directly: strawberry's ``selected_fields``
converts the whole selection tree, arguments included, on every access.
"""

from __future__ import annotations

from collections.abc import Iterable

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionNode

from gateway.edge.context import Info


def selected(info: Info, names: Iterable[str]) -> frozenset[str]:
    """Those of ``names`` selected directly on the resolved field, through fragments and under
    any alias. A field under ``@skip``/``@include`` counts as selected: leaving work out is only
    an optimisation, so a doubtful case does the work."""
    wanted = frozenset(names)
    raw = info._raw_info
    found: set[str] = set()
    pending: list[SelectionNode] = [
        selection
        for node in raw.field_nodes
        if node.selection_set is not None
        for selection in node.selection_set.selections
    ]
    seen_fragments: set[str] = set()
    while pending and found != wanted:
        selection = pending.pop()
        if isinstance(selection, FieldNode):
            if selection.name.value in wanted:
                found.add(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            pending.extend(selection.selection_set.selections)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = raw.fragments.get(name)
            if fragment is None:
                return wanted  # not known here: assume everything is asked for
            if name not in seen_fragments:
                seen_fragments.add(name)
                pending.extend(fragment.selection_set.selections)
        else:
            return wanted
    return frozenset(found)
