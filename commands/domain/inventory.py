"""Inventory rules, pure: stock levels, admin changes, reservation lines and states.

The database enforces the invariant (0 <= reserved <= on_hand) with a CHECK
and conditional updates; these rules decide what to ask for and explain refusals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from commands.errors import DomainError, InvalidInput
from commands.events.inventory import MAX_BUCKETS, InventoryEvent, sku_and_bucket

# on_hand is a PostgreSQL integer; stay well inside it so sums never overflow.
MAX_ON_HAND = 1_000_000_000
MAX_DELTA = 1_000_000
MAX_SKU_LENGTH = 64
MAX_REASON_LENGTH = 500
MAX_RESERVATION_QUANTITY = 1_000_000

ACTIVE = "active"
COMMITTED = "committed"
RELEASED = "released"
EXPIRED = "expired"
CONSUMED = "consumed"
# Reservations that hold stock (count in ``reserved``).
HOLDING = frozenset({ACTIVE, COMMITTED})
# Reservations whose stock went back: a late payment success may take it again.
LAPSED = frozenset({RELEASED, EXPIRED})


@dataclass(frozen=True)
class StockLevel:
    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class ReservationLine:
    sku: str
    quantity: int


class OutOfStock(DomainError):
    """Some lines cannot be reserved; ``skus`` names every short one."""

    code = "OUT_OF_STOCK"

    def __init__(
        self,
        skus: Sequence[str],
        field: Sequence[str] | None = None,
        available: Mapping[str, int] | None = None,
    ) -> None:
        """``available``: free units of each short SKU when the refusal was decided, if known
        (a buyer can then ask for what is left)."""
        self.skus = sorted(set(skus))
        self.available = dict(available or {})
        named = [
            f"{sku} ({self.available[sku]} available)" if sku in self.available else sku for sku in self.skus
        ]
        super().__init__(f"not enough stock for: {', '.join(named)}", field, "OUT_OF_STOCK")


def validate_sku(sku: str) -> None:
    if not sku or len(sku) > MAX_SKU_LENGTH or sku != sku.strip():
        raise InvalidInput(
            f"sku must be 1 to {MAX_SKU_LENGTH} characters without surrounding spaces", ["sku"]
        )


def decide_set(level: StockLevel, on_hand: int) -> int:
    """The new on-hand for an absolute set; never below what is reserved."""
    if on_hand < 0 or on_hand > MAX_ON_HAND:
        raise InvalidInput(f"onHand must be between 0 and {MAX_ON_HAND}", ["onHand"])
    if on_hand < level.reserved:
        raise InvalidInput(
            f"onHand {on_hand} is below the {level.reserved} units reserved for {level.sku}", ["onHand"]
        )
    return on_hand


def decide_adjust(level: StockLevel, delta: int, reason: str | None) -> int:
    """The new on-hand after adding ``delta``; never below what is reserved."""
    if delta == 0 or abs(delta) > MAX_DELTA:
        raise InvalidInput(f"delta must be non-zero and at most {MAX_DELTA} in size", ["delta"])
    if reason is not None and len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"reason must be at most {MAX_REASON_LENGTH} characters", ["reason"])
    new_on_hand = level.on_hand + delta
    if new_on_hand > MAX_ON_HAND:
        raise InvalidInput(f"on-hand stock cannot exceed {MAX_ON_HAND}", ["delta"])
    if new_on_hand < 0:
        raise InvalidInput(
            f"on-hand would drop to {new_on_hand}: {level.sku} has {level.on_hand} on hand", ["delta"]
        )
    if new_on_hand < level.reserved:
        raise InvalidInput(
            f"on-hand would drop to {new_on_hand}, below the {level.reserved} units reserved for {level.sku}",
            ["delta"],
        )
    return new_on_hand


def merge_lines(lines: Iterable[ReservationLine]) -> list[tuple[str, int]]:
    """Quantity per SKU, in SKU order: every writer locks rows in this order, so none deadlock."""
    merged: dict[str, int] = {}
    for line in lines:
        if line.quantity <= 0 or line.quantity > MAX_RESERVATION_QUANTITY:
            raise InvalidInput(f"quantity for {line.sku} must be between 1 and {MAX_RESERVATION_QUANTITY}")
        merged[line.sku] = merged.get(line.sku, 0) + line.quantity
    return sorted(merged.items())


def level_after(event: InventoryEvent) -> StockLevel:
    return StockLevel(event.sku, event.on_hand, event.reserved)


def fold(stream_events: Iterable[tuple[str, InventoryEvent]]) -> dict[str, StockLevel]:
    """Level per SKU after (stream id, event) pairs applied in stream order: each stream's last
    event is its row's level, and a SKU's level is the sum over its buckets' streams."""
    rows: dict[tuple[str, int], StockLevel] = {}
    for stream, event in stream_events:
        rows[sku_and_bucket(stream)] = level_after(event)
    levels: dict[str, StockLevel] = {}
    for (sku, _), row in sorted(rows.items()):
        before = levels.get(sku, StockLevel(sku, 0, 0))
        levels[sku] = StockLevel(sku, before.on_hand + row.on_hand, before.reserved + row.reserved)
    return levels


@dataclass(frozen=True)
class BucketLevel:
    bucket: int
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def take_in_bucket_order(free: Sequence[tuple[int, int]], quantity: int) -> dict[int, int]:
    """Units to take from each bucket, (bucket, free) given in bucket order: each gives what it
    has until the line is whole. Empty when all of them together have less than ``quantity``."""
    if sum(units for _, units in free) < quantity:
        return {}
    takes: dict[int, int] = {}
    left = quantity
    for bucket, units in free:
        if left == 0:
            break
        if units > 0:
            takes[bucket] = min(units, left)
            left -= takes[bucket]
    return takes


def validate_buckets(buckets: int) -> int:
    if not 1 <= buckets <= MAX_BUCKETS:
        raise InvalidInput(f"buckets must be between 1 and {MAX_BUCKETS}", ["buckets"])
    return buckets


def spread(rows: Sequence[BucketLevel], buckets: int, free: int) -> dict[int, int]:
    """The on-hand of each bucket row once ``free`` available units are spread evenly over the
    first ``buckets`` buckets (the lower ones get the remainder); rows beyond them keep only
    what they have reserved. What is reserved never moves: a reservation names its bucket.
    Only rows whose on-hand changes are returned."""
    if free < 0:
        raise ValueError("free stock cannot be negative")
    if not set(range(buckets)) <= {row.bucket for row in rows}:
        raise ValueError(f"every bucket below {buckets} needs its row to spread over it")
    share, remainder = divmod(free, buckets)
    changed: dict[int, int] = {}
    for row in sorted(rows, key=lambda r: r.bucket):
        gets = (share + (1 if row.bucket < remainder else 0)) if row.bucket < buckets else 0
        if row.reserved + gets != row.on_hand:
            changed[row.bucket] = row.reserved + gets
    return changed


def needs_rebalancing(rows: Sequence[BucketLevel], buckets: int) -> bool:
    """True when the free stock is spread so unevenly that buyers would queue on the fuller
    buckets (or find a bucket empty while another holds several units), or when a bucket beyond
    ``buckets`` still holds free units (after the SKU was given fewer buckets)."""
    if any(row.bucket >= buckets and row.available > 0 for row in rows):
        return True
    used = [row.available for row in rows if row.bucket < buckets]
    if len(used) < buckets:
        return sum(used) > 0
    return max(used) - min(used) > max(1, sum(used) // (2 * buckets))
