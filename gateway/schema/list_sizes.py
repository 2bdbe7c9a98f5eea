"""How long each list of objects in the schema may be: a realistic size and a hard maximum.

The static cost estimate uses ``expected`` (or a connection's ``first``); the
resolvers cut every list at ``maximum`` (``bounded``), so the worst case of any
operation is known before it runs. Connections take their size from ``first``,
which their resolvers refuse above ``CONNECTION_FIRST_MAX``.
``tests/unit/test_list_sizes.py`` checks that every list of objects in the
schema is declared here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from commands.domain.cart import MAX_LINES
from commands.domain.catalog import MAX_VARIANTS
from commands.domain.money import TAX_CATEGORIES
from gateway.edge.cost import CostModel
from gateway.edge.cost import DeclaredSize as ListSize
from gateway.edge.settings import EdgeSettings
from queries.product_search import FACET_SIZE, MAX_FIRST, PRICE_BUCKETS

ItemT = TypeVar("ItemT")

# An order's history is a short state machine walk; far fewer facts than this ever happen.
MAX_ORDER_HISTORY = 50
MAX_PROJECTIONS = 20
# Shipping methods offered for one cart: a store with more shows the first ones by code.
MAX_SHIPPING_OPTIONS = 50
# Field errors of one mutation (a product with 100 variants may have a few per variant).
MAX_USER_ERRORS = 100

LIST_SIZES: dict[tuple[str, str], ListSize] = {
    ("Product", "variants"): ListSize(3, MAX_VARIANTS),
    ("Cart", "lines"): ListSize(3, MAX_LINES),
    ("Order", "lines"): ListSize(3, MAX_LINES),
    ("Order", "history"): ListSize(5, MAX_ORDER_HISTORY),
    ("ProductFacets", "brands"): ListSize(10, FACET_SIZE),
    ("ProductFacets", "categories"): ListSize(10, FACET_SIZE),
    ("ProductFacets", "prices"): ListSize(len(PRICE_BUCKETS), len(PRICE_BUCKETS)),
    ("Query", "projections"): ListSize(10, MAX_PROJECTIONS),
    ("Cart", "shippingMethods"): ListSize(3, MAX_SHIPPING_OPTIONS),
    # One tax line per distinct rate: at most one per tax category.
    ("CartTotals", "taxLines"): ListSize(2, len(TAX_CATEGORIES)),
    ("Order", "taxLines"): ListSize(2, len(TAX_CATEGORIES)),
}
# Every mutation payload's ``userErrors``: pessimistic on purpose, the actual cost is charged anyway.
USER_ERRORS = ListSize(10, MAX_USER_ERRORS)

# ``first`` of each connection field: above this the resolver refuses the request.
CONNECTION_FIRST_MAX: dict[tuple[str, str], int] = {
    ("Query", "products"): MAX_FIRST,
    ("Query", "orders"): 100,
    ("Query", "customerTimeline"): 200,
}


def list_size(type_name: str, field_name: str) -> ListSize | None:
    if field_name == "userErrors":
        return USER_ERRORS
    return LIST_SIZES.get((type_name, field_name))


def cost_model(edge: EdgeSettings) -> CostModel:
    """The edge's cost model with the list sizes declared here."""
    return CostModel(
        edge.max_cost, edge.default_list_size, edge.mutation_cost, list_size, CONNECTION_FIRST_MAX
    )


def bounded(type_name: str, field_name: str, items: Iterable[ItemT]) -> list[ItemT]:
    """``items`` cut at the declared maximum of ``type_name.field_name``."""
    size = list_size(type_name, field_name)
    assert size is not None, f"{type_name}.{field_name} has no declared list size"
    values = list(items)
    return values[: size.maximum]
