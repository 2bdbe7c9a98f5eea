"""The ledger rows that change what the catalog shows, as SQL over ``ledger_events``.

Product events, and stock events that may change whether a stock bucket has stock. Every stock
event carries its bucket's ``available`` after it (``commands/events/inventory.py``); a
reservation lowers it and a shipment keeps it (on hand and reserved drop together), so such an
event that leaves the bucket with stock changes nothing shown. Any event that can raise
``available`` (a set, an adjustment, a release, an expiry, a rebalance) counts.

The search read model rewrites a product's document only for these rows
(``projections/search/stock.py``: a document changes for stock only when a bucket runs out or
gets stock), so its version is the last of them (``gateway/edge/read_model_versions.py``). The
partial index ``ledger_events_catalog_changes`` holds exactly these rows, so finding the last
one is one index probe however many purchases and cart writes came after it; the query must
spell the condition as ``CATALOG_CHANGES`` does for PostgreSQL to use the index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from commands.events.catalog import PRODUCT_EVENT_TYPES
from commands.events.inventory import (
    INVENTORY_EVENT_TYPES,
    ReservationCommitted,
    StockReserved,
    StockShipped,
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def rows_where(column: str, values: Iterable[str], unless: str | None = None) -> str:
    """Rows whose ``column`` is one of ``values`` (names, as literals), less those ``unless`` matches."""
    names = sorted(set(values))
    if not names or not all(_NAME.fullmatch(name) for name in [column, *names]):
        raise ValueError(f"not names: {column!r}, {names!r}")
    listed = ", ".join(f"'{name}'" for name in names)
    return f"{column} IN ({listed})" + ("" if unless is None else f" AND NOT ({unless})")


CATALOG_CHANGE_TYPES: tuple[str, ...] = tuple(sorted(PRODUCT_EVENT_TYPES | INVENTORY_EVENT_TYPES))
STOCK_KEPT = (
    rows_where("type", (cls.__name__ for cls in (StockReserved, ReservationCommitted, StockShipped)))
    + " AND (data ->> 'available')::integer > 0"
)
CATALOG_CHANGES = rows_where("type", CATALOG_CHANGE_TYPES, STOCK_KEPT)
