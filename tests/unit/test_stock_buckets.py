"""Stock bucket rules, pure: stream names, spreading free units, when to rebalance, folding."""

from __future__ import annotations

import pytest

from commands.domain.inventory import (
    BucketLevel,
    StockLevel,
    decide_adjust,
    fold,
    needs_rebalancing,
    spread,
    validate_buckets,
)
from commands.errors import InvalidInput
from commands.events.inventory import (
    MAX_BUCKETS,
    StockReserved,
    StockSet,
    sku_and_bucket,
    stream_id,
    stream_ids,
)


def test_bucket_zero_keeps_the_skus_own_stream_and_the_others_are_named_after_it() -> None:
    assert stream_id("TEE-M") == "inventory-TEE-M"
    assert stream_id("TEE-M", 3) == "inventory-TEE-M~3"
    assert sku_and_bucket("inventory-TEE-M") == ("TEE-M", 0)
    assert sku_and_bucket("inventory-TEE_M.2~15") == ("TEE_M.2", 15)
    assert [sku_and_bucket(s) for s in stream_ids("X")] == [("X", b) for b in range(MAX_BUCKETS)]


@pytest.mark.parametrize(
    "stream", ["product-1", "inventory-X~0", "inventory-X~16", "inventory-X~01", "inventory-X~a"]
)
def test_a_stream_that_names_no_bucket_is_refused(stream: str) -> None:
    with pytest.raises(ValueError):
        sku_and_bucket(stream)


def test_free_units_are_spread_evenly_and_reserved_units_never_move() -> None:
    rows = [BucketLevel(0, 10, 4), BucketLevel(1, 0, 0), BucketLevel(2, 3, 3)]
    # 6 free over 3 buckets: 2 each, on top of what each has reserved.
    assert spread(rows, 3, 6) == {0: 6, 1: 2, 2: 5}
    # 7 free: the lower buckets take the remainder.
    assert spread(rows, 3, 7) == {0: 7, 1: 2, 2: 5}


def test_rows_beyond_the_bucket_count_keep_only_what_they_reserved() -> None:
    rows = [BucketLevel(0, 2, 0), BucketLevel(1, 5, 1), BucketLevel(2, 4, 0)]
    assert spread(rows, 1, 11 - 1) == {0: 10, 1: 1, 2: 0}


def test_unchanged_rows_are_left_out_and_missing_rows_are_an_error() -> None:
    assert spread([BucketLevel(0, 3, 0), BucketLevel(1, 3, 0)], 2, 6) == {}
    with pytest.raises(ValueError, match="every bucket below 3"):
        spread([BucketLevel(0, 3, 0), BucketLevel(1, 3, 0)], 3, 6)
    with pytest.raises(ValueError):
        spread([BucketLevel(0, 3, 0)], 1, -1)


@pytest.mark.parametrize(
    ("free", "buckets", "expected"),
    [
        ([5, 5, 5, 5], 4, False),
        ([1, 0, 1, 1], 4, False),  # one unit apart is as even as it gets
        ([0, 10, 10, 10], 4, True),
        ([20, 16, 18, 17], 4, False),  # within an eighth of the free stock
        ([30, 10, 10, 10], 4, True),
        ([0, 4, 0], 1, True),  # gathered into one bucket, units left in another
        ([4, 0, 0], 1, False),
        ([4, 0, 0], 3, True),
    ],
)
def test_when_buckets_need_rebalancing(free: list[int], buckets: int, expected: bool) -> None:
    rows = [BucketLevel(bucket, units + 1, 1) for bucket, units in enumerate(free)]
    assert needs_rebalancing(rows, buckets) is expected


def test_bucket_counts_outside_one_to_sixteen_are_refused() -> None:
    assert validate_buckets(1) == 1 and validate_buckets(MAX_BUCKETS) == MAX_BUCKETS
    for wrong in (0, -2, MAX_BUCKETS + 1):
        with pytest.raises(InvalidInput, match="buckets must be between"):
            validate_buckets(wrong)


def test_a_skus_level_is_the_sum_of_each_bucket_streams_last_event() -> None:
    def reserved(on_hand: int, held: int) -> StockReserved:
        return StockReserved(
            sku="X",
            product_id=None,
            on_hand=on_hand,
            reserved=held,
            available=on_hand - held,
            order_id="o",
            quantity=1,
            expires_at=None,
        )

    events = [
        (
            "inventory-X",
            StockSet(sku="X", product_id=None, on_hand=5, reserved=0, available=5, previous_on_hand=9),
        ),
        ("inventory-X~1", reserved(4, 1)),
        ("inventory-X", reserved(5, 2)),
        ("inventory-X~1", reserved(4, 3)),
    ]
    assert fold(events) == {"X": StockLevel("X", 9, 5)}


def test_an_adjustment_below_zero_says_what_is_on_hand() -> None:
    with pytest.raises(InvalidInput, match="on-hand would drop to -5: S has 0 on hand"):
        decide_adjust(StockLevel("S", 0, 0), -5, None)
