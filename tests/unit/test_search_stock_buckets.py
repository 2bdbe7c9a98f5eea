"""Stock in search documents, pure: levels per (sku, bucket), a variant in stock while any bucket
is, per-bucket version guards, and documents written before buckets."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from commands.events.inventory import StockRebalanced, stream_id
from commands.store.ledger.reader import RecordedEvent
from projections.search.stock import StockLevel, apply_stock, stock_buckets, stock_from_events

PID = "product-1"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def recorded(sku: str, bucket: int, version: int, available: int, position: int = 1) -> RecordedEvent:
    event = StockRebalanced(
        sku=sku, product_id=PID, on_hand=available, reserved=0, available=available, previous_on_hand=0
    )
    return RecordedEvent(
        position=position,
        tx_id=position,
        event_id=uuid.uuid4(),
        stream_type="inventory",
        stream_id=stream_id(sku, bucket),
        stream_version=version,
        type=event.event_type(),
        data=event.to_data(),
        metadata={},
        recorded_at=T0,
    )


def document(*variants: dict[str, Any]) -> dict[str, Any]:
    return {"product_id": PID, "in_stock": any(v["in_stock"] for v in variants), "variants": list(variants)}


def fresh(sku: str) -> dict[str, Any]:
    """A variant as ``product_document`` builds it: untracked, so in stock."""
    return {"sku": sku, "in_stock": True, "stock_version": 0}


def level(available: int, version: int) -> StockLevel:
    return StockLevel(PID, available, version)


def test_levels_are_the_newest_per_sku_and_bucket_whatever_the_order() -> None:
    events = [
        recorded("A", 1, 2, 0, position=1),
        recorded("A", 1, 1, 5, position=2),  # older, delivered later
        recorded("A", 0, 7, 3, position=3),
        recorded("A", 2, 1, 4, position=4),
        recorded("AB", 0, 1, 9, position=5),
    ]
    assert stock_from_events(events) == {
        ("A", 1): level(0, 2),
        ("A", 0): level(3, 7),
        ("A", 2): level(4, 1),
        ("AB", 0): level(9, 1),
    }


def test_a_document_from_before_buckets_reads_as_bucket_zero() -> None:
    assert stock_buckets({"sku": "A", "in_stock": False, "stock_version": 4}) == {0: (4, 0)}
    assert stock_buckets({"sku": "A", "in_stock": True, "stock_version": 4}) == {0: (4, 1)}
    assert stock_buckets(fresh("A")) == {0: (0, 1)}
    assert stock_buckets({"sku": "A", "in_stock": True, "stock_buckets": {"0": [3, 0], "2": [1, 5]}}) == {
        0: (3, 0),
        2: (1, 5),
    }


def test_a_variant_is_out_of_stock_only_when_every_bucket_is() -> None:
    doc = document(fresh("A"), {"sku": "B", "in_stock": False, "stock_version": 2})
    assert apply_stock(doc, {("A", 0): level(2, 9), ("A", 1): level(1, 1), ("A", 2): level(0, 1)}) is True
    variant = doc["variants"][0]
    assert variant["stock_buckets"] == {"0": [9, 2], "1": [1, 1], "2": [1, 0]}
    assert (variant["in_stock"], variant["stock_version"], doc["in_stock"]) == (True, 9, True)

    assert apply_stock(doc, {("A", 0): level(0, 10)}) is True  # bucket 0 runs out: written
    assert (variant["in_stock"], doc["in_stock"]) == (True, True)
    assert apply_stock(doc, {("A", 1): level(0, 2)}) is True
    assert (variant["in_stock"], doc["in_stock"]) == (False, False)
    assert variant["stock_buckets"] == {"0": [10, 0], "1": [2, 0], "2": [1, 0]}

    assert apply_stock(doc, {("A", 2): level(3, 2)}) is True
    assert (variant["in_stock"], variant["stock_version"], doc["in_stock"]) == (True, 10, True)


def test_only_a_bucket_running_out_or_getting_stock_asks_for_a_write() -> None:
    doc = document({"sku": "A", "in_stock": True, "stock_buckets": {"0": [3, 4], "1": [2, 1]}})
    assert apply_stock(doc, {("A", 0): level(2, 4)}) is False  # a sale, bucket 0 not empty
    assert doc["variants"][0]["stock_buckets"] == {"0": [4, 2], "1": [2, 1]}  # folded all the same
    assert apply_stock(doc, {("A", 3): level(0, 1)}) is False  # a new bucket with nothing in it
    assert apply_stock(doc, {("A", 1): level(0, 3)}) is True
    assert doc["variants"][0]["in_stock"] is True


def test_a_sku_with_bucket_zero_alone_keeps_the_document_as_before_buckets() -> None:
    doc = document(fresh("A"))
    assert apply_stock(doc, {("A", 0): level(0, 2)}) is True
    assert doc["variants"][0] == {"sku": "A", "in_stock": False, "stock_version": 2}
    assert apply_stock(doc, {("A", 0): level(4, 3), ("A", 1): level(0, 1)}) is True
    assert doc["variants"][0] == {
        "sku": "A",
        "in_stock": True,
        "stock_version": 3,
        "stock_buckets": {"0": [3, 4], "1": [1, 0]},
    }


def test_each_bucket_is_guarded_by_its_own_version() -> None:
    doc = document({"sku": "A", "in_stock": True, "stock_buckets": {"0": [8, 0], "1": [5, 2]}})
    before = copy.deepcopy(doc)
    # Older or replayed events of a bucket change nothing, even beside newer ones of another.
    assert apply_stock(doc, {("A", 1): level(0, 5), ("A", 0): level(7, 3)}) is False
    assert doc == before
    # Buckets whose streams are behind bucket 0's are still folded.
    assert apply_stock(doc, {("A", 1): level(1, 6), ("A", 2): level(1, 1)}) is True
    assert doc["variants"][0]["stock_buckets"] == {"0": [8, 0], "1": [6, 1], "2": [1, 1]}
    assert apply_stock(doc, {("A", 2): level(0, 2)}) is True
    assert (doc["variants"][0]["in_stock"], doc["in_stock"]) == (True, True)
    assert apply_stock(doc, {("A", 1): level(0, 7)}) is True
    assert (doc["variants"][0]["in_stock"], doc["in_stock"]) == (False, False)


def test_applying_the_same_levels_again_changes_nothing() -> None:
    doc = document(fresh("A"), fresh("B"))
    levels = {("A", 0): level(0, 3), ("A", 1): level(2, 1), ("B", 0): level(0, 1), ("C", 0): level(1, 1)}
    assert apply_stock(doc, levels) is True
    once = copy.deepcopy(doc)
    assert apply_stock(doc, levels) is False
    assert doc == once
    assert [v["in_stock"] for v in doc["variants"]] == [True, False]


@pytest.mark.parametrize(
    ("in_stock", "stock_version", "incoming", "expected"),
    [
        # Bucket 0's event the old document already folded (or an older one): nothing moves.
        (False, 4, {("A", 0): level(5, 4)}, (False, False, 4)),
        (False, 4, {("A", 0): level(5, 5)}, (True, True, 5)),
        # The old document's bucket 0 had stock: a second bucket running dry leaves it in stock.
        (True, 4, {("A", 1): level(0, 1)}, (True, False, 4)),
        (False, 4, {("A", 1): level(2, 1)}, (True, True, 4)),
        (True, 4, {("A", 0): level(0, 5)}, (False, True, 5)),
    ],
)
def test_documents_from_before_buckets_keep_working(
    in_stock: bool,
    stock_version: int,
    incoming: dict[tuple[str, int], StockLevel],
    expected: tuple[bool, bool, int],
) -> None:
    doc = document({"sku": "A", "in_stock": in_stock, "stock_version": stock_version})
    written = apply_stock(doc, incoming)
    variant = doc["variants"][0]
    assert (variant["in_stock"], written, variant["stock_version"]) == expected
    assert doc["in_stock"] is variant["in_stock"]
