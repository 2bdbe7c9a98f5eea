"""Every list of objects in the schema has a declared size, and the cost model uses it."""

from __future__ import annotations

from graphql import (
    GraphQLInterfaceType,
    GraphQLObjectType,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_composite_type,
    is_list_type,
    parse,
)

from gateway.edge.cost import CostModel, static_cost
from gateway.edge.settings import EdgeSettings
from gateway.http.app import build_schema
from gateway.schema import orders, support
from gateway.schema.list_sizes import CONNECTION_FIRST_MAX, bounded, cost_model, list_size
from queries.product_search import MAX_FIRST

SCHEMA = build_schema()._schema
MODEL: CostModel = cost_model(EdgeSettings())

SEARCH_PAGE = """
query Search($q: String) {
  products(query: $q, first: 20) {
    totalCount
    pageInfo { hasNextPage endCursor }
    facets { brands { value count } categories { value count } prices { from to count } }
    edges { cursor node { id title priceRange { min { amount } max { amount } }
                          variants { sku price { amount } } } }
  }
}
"""


def _estimate(query: str, *, worst_case: bool = False) -> int:
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    return static_cost(SCHEMA, document, operation, {}, MODEL, worst_case=worst_case)


def test_every_list_of_objects_is_a_connection_page_or_declared() -> None:
    undeclared = []
    for type_ in SCHEMA.type_map.values():
        if type_.name.startswith("__") or not isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            continue
        for name, field in type_.fields.items():
            listed = is_list_type(get_nullable_type(field.type))
            if not listed or not is_composite_type(get_named_type(field.type)):
                continue
            if name == "edges" and type_.name.endswith("Connection"):
                continue  # sized by the connection's `first`
            size = list_size(type_.name, name)
            if size is None or not 0 <= size.expected <= size.maximum:
                undeclared.append(f"{type_.name}.{name}")
    assert undeclared == []


def test_connection_caps_are_the_resolvers_caps() -> None:
    assert CONNECTION_FIRST_MAX[("Query", "products")] == MAX_FIRST
    assert CONNECTION_FIRST_MAX[("Query", "orders")] == orders.MAX_PAGE
    assert CONNECTION_FIRST_MAX[("Query", "customerTimeline")] == support.TIMELINE_MAX_FIRST
    for type_name, field_name in CONNECTION_FIRST_MAX:
        assert "first" in SCHEMA.get_type(type_name).fields[field_name].args  # type: ignore[union-attr]


def test_resolvers_cut_lists_at_the_maximum() -> None:
    assert bounded("Product", "variants", range(500)) == list(range(100))
    assert bounded("ProductFacets", "prices", "abcdefghij") == list("abcdefg")


def test_the_estimate_uses_realistic_sizes_and_the_worst_case_is_bounded() -> None:
    # 1 connection + pageInfo + facets (1 + 10 + 10 + 7) + 20 x (edge + node + priceRange 3 + 3 x 2 variants)
    assert _estimate(SEARCH_PAGE) == 1 + 1 + 28 + 20 * (1 + 1 + 3 + 3 * 2)
    # The worst case: every list at its maximum, and `first` capped at what the resolver serves.
    assert _estimate(SEARCH_PAGE, worst_case=True) == 1 + 1 + (1 + 100 + 100 + 7) + 20 * (5 + 100 * 2)
    capped = "{ products(first: 100000) { edges { node { id } } } }"
    assert _estimate(capped) == 1 + MAX_FIRST * 2
