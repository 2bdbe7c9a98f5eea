"""Stock inside search documents (``variants[].in_stock``, product ``in_stock``), for filtering.

A SKU's stock may be split over buckets, each with its own inventory stream (``inventory-<sku>``
for bucket 0, ``inventory-<sku>~<b>``) whose events carry that bucket's numbers only; a variant
is in stock when the sum of its buckets' available units is positive, that is (no bucket is ever
below zero) when some bucket has a unit. Those streams are not the product stream, so each
variant keeps, per bucket, the version of the stream it folded in and the units it said
(``stock_buckets``: ``{"<bucket>": [version, available]}``) and only moves forward;
``stock_version`` is bucket 0's version. Most SKUs only ever have bucket 0, and their variants
(like documents written before buckets) have no ``stock_buckets``: their bucket 0 is
``[stock_version, 1 if in_stock else 0]``. A product document built from catalog events takes
the latest stock of every bucket from the ledger, so the result does not depend on which of the
streams the projector reached first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.events.inventory import INVENTORY_EVENT_TYPES, sku_and_bucket, stream_ids
from commands.store.driver import PgConnection, asyncpg_of
from commands.store.ledger.reader import RecordedEvent

__all__ = [
    "INVENTORY_EVENT_TYPES",
    "StockLevel",
    "apply_stock",
    "latest_stock",
    "stock_buckets",
    "stock_from_events",
]

# (sku, bucket)
BucketKey = tuple[str, int]


@dataclass(frozen=True)
class StockLevel:
    """One bucket's level as its stream's event at ``version`` left it."""

    product_id: str | None
    available: int
    version: int


def stock_from_events(events: Iterable[RecordedEvent]) -> dict[BucketKey, StockLevel]:
    """The newest level per (sku, bucket) among ``events`` (by its stream's version)."""
    levels: dict[BucketKey, StockLevel] = {}
    for event in events:
        key = sku_and_bucket(event.stream_id)
        current = levels.get(key)
        if current is None or event.stream_version > current.version:
            levels[key] = _level(event.data.get("product_id"), event.data["available"], event.stream_version)
    return levels


# One index probe per stream (the newest event only, however long a hot SKU's stream is).
_LATEST = (
    "SELECT s.stream_id, e.stream_version, e.data->>'product_id' AS product_id, "
    "(e.data->>'available')::int AS available FROM unnest($1::text[]) AS s (stream_id) "
    "CROSS JOIN LATERAL (SELECT stream_version, data FROM ledger_events "
    "WHERE ledger_events.stream_id = s.stream_id ORDER BY stream_version DESC LIMIT 1) AS e"
)


async def latest_stock(
    conn: AsyncConnection | PgConnection, skus: Sequence[str]
) -> dict[BucketKey, StockLevel]:
    """The latest level of every bucket of ``skus`` in the ledger (one statement)."""
    if not skus:
        return {}
    driver = await asyncpg_of(conn)
    streams = [stream for sku in dict.fromkeys(skus) for stream in stream_ids(sku)]
    rows = await driver.fetch(_LATEST, streams)
    return {
        sku_and_bucket(r["stream_id"]): _level(r["product_id"], r["available"], r["stream_version"])
        for r in rows
    }


def _level(product_id: Any, available: Any, version: int) -> StockLevel:
    return StockLevel(None if product_id is None else str(product_id), int(available), version)


def stock_buckets(variant: Mapping[str, Any]) -> dict[int, tuple[int, int]]:
    """A variant's bucket -> (stream version, available) as its document holds them."""
    stored = variant.get("stock_buckets")
    if stored is None:
        return {0: (int(variant.get("stock_version") or 0), 1 if variant["in_stock"] else 0)}
    return {int(bucket): (int(version), int(available)) for bucket, (version, available) in stored.items()}


def apply_stock(document: dict[str, Any], levels: Mapping[BucketKey, StockLevel]) -> bool:
    """Fold newer bucket levels into a product document; True when the document must be written:
    some bucket ran out or got stock (a variant's ``in_stock``, hence maybe the product's, flips
    only then).

    Exact numbers are read by the API from the inventory read model (``gateway.schema.stock``),
    so a sale that empties no bucket costs the engine nothing, and a document's bucket numbers
    and versions in the index are as of its last write. Writing when a bucket alone runs out (the
    variant still in stock elsewhere) keeps whether each bucket has stock exact in the index: a
    document read back (another process, a cache eviction) and then told that its last stocked
    bucket ran out must know that no other bucket still has stock.
    """
    by_sku: dict[str, dict[int, StockLevel]] = {}
    for (sku, bucket), level in levels.items():
        by_sku.setdefault(sku, {})[bucket] = level
    write = flipped = False
    for variant in document.get("variants", []):
        was_in_stock = variant["in_stock"]
        write = _fold_buckets(variant, by_sku.get(variant["sku"], {})) or write
        flipped = flipped or variant["in_stock"] != was_in_stock
    if flipped:
        document["in_stock"] = any(v["in_stock"] for v in document.get("variants", []))
    return write or flipped


def _fold_buckets(variant: dict[str, Any], incoming: Mapping[int, StockLevel]) -> bool:
    """Fold the newer of ``incoming`` (by bucket) into a variant; True when a bucket ran out or
    got stock."""
    buckets = stock_buckets(variant)
    newer = {b: level for b, level in incoming.items() if level.version > buckets.get(b, (0, 0))[0]}
    if not newer:
        return False
    emptied_or_filled = False
    for bucket, level in newer.items():
        had_stock = buckets.get(bucket, (0, 0))[1] > 0
        emptied_or_filled = emptied_or_filled or (level.available > 0) != had_stock
        buckets[bucket] = (level.version, level.available)
    if set(buckets) == {0}:
        variant.pop("stock_buckets", None)  # in_stock and stock_version say it all
    else:
        variant["stock_buckets"] = {str(b): [v, a] for b, (v, a) in sorted(buckets.items())}
    variant["stock_version"] = buckets.get(0, (0, 0))[0]
    variant["in_stock"] = any(available > 0 for _, available in buckets.values())
    return emptied_or_filled
