"""Taking stock for an order: the conditional reservations, never more than a row has free.

Lock order: stock rows by SKU, then by bucket (the order of every writer of more than one row).
The one exception is ``reserve_one`` on a SKU in buckets: it locks one bucket, not the first, and
waits for nothing else while it holds it (an attempt that fails is rolled back to a savepoint,
which lets go of any row it locked), so it cannot close a cycle.

A SKU's bucket rows are created by ``inventorySetBuckets`` while it holds bucket 0. A statement
that waited for bucket 0 meanwhile reads the rows as of its snapshot, from before those rows
existed; whoever finds a line short after such a wait looks once more, in a new statement (new
snapshot, and bucket 0 already held, so no new rows can appear), before refusing it.
"""

from __future__ import annotations

import functools
import random
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.domain.inventory import take_in_bucket_order
from commands.events.base import encode_event
from commands.events.inventory import MAX_BUCKETS, StockReserved
from commands.inventory.stock_rows import (
    ITEM_COLUMNS,
    NEXT_VERSION,
    STREAM_TYPE,
    ItemRow,
    change_item,
    change_item_sql,
    stream_of,
)
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import RECORDED_COLUMNS, RECORDED_WIDTH, RecordedEvent, recorded_event
from commands.store.ledger.writer import INSERT_EVENTS, conflicts_raised, encoded_metadata
from commands.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class OneLine:
    """What an order reserves of one SKU, and the reservation row's status and expiry."""

    sku: str
    quantity: int
    order_id: uuid.UUID
    expires_at: datetime | None
    status: str


async def reserve_one(
    uow: UnitOfWork, line: OneLine, *, buckets: int = 1
) -> tuple[ItemRow, RecordedEvent] | None:
    """Reserve ``line``'s quantity of its SKU, record the order's reservation row and append its
    StockReserved, in one statement: after the row's lock is taken only the COMMIT follows.
    None, and nothing written, when it is short.

    A SKU in ``buckets`` rows is taken from one bucket that has the units, one no other
    transaction holds if there is one; None then also when no bucket alone has them, or the one
    waited for was emptied meanwhile (the caller then takes from the buckets in their order)."""
    driver = await asyncpg_of(uow.conn)
    arguments = _reserve_arguments(uow, line)
    async with conflicts_raised(f"the version counted for a stream of {line.sku} was taken already"):
        if buckets <= 1:
            row = await driver.fetchrow(_RESERVE_ONE, *arguments)
        else:
            row = await _reserve_in_a_bucket(driver, [*arguments, random.randrange(buckets)])
    return _reserved(uow, row)


class ReservingInOneRow(NamedTuple):
    """``reserve_one`` on a SKU whose stock is one row, as CTEs of a caller's own statement, so
    that the caller's writes and the reservation take one round trip. The caller selects ``RESERVED_COLUMNS``
    last, from ``... LEFT JOIN (RESERVED_FROM) ON true``, and reads them back with ``reserved``."""

    ctes: str
    args: list[Any]

    def reserved(self, uow: UnitOfWork, row: Any) -> tuple[ItemRow, RecordedEvent] | None:
        """From the caller's row: the reservation (its event counted as appended), or None when
        the row had too few units (nothing of it written)."""
        columns = tuple(row)[-_RESERVED_WIDTH:]
        return _reserved(uow, None if columns[0] is None else columns)


def reserving_in_one_row(uow: UnitOfWork, line: OneLine, *, first_parameter: int) -> ReservingInOneRow:
    """``ReservingInOneRow``, its parameters numbered from ``first_parameter``."""
    return ReservingInOneRow(_reserving_ctes(first_parameter - 1), _reserve_arguments(uow, line))


def _reserve_arguments(uow: UnitOfWork, line: OneLine) -> list[Any]:
    # The event's row-dependent fields are filled in by the statement (it alone knows them).
    event = StockReserved(
        sku=line.sku,
        product_id=None,
        on_hand=0,
        reserved=0,
        available=0,
        order_id=str(line.order_id),
        quantity=line.quantity,
        expires_at=line.expires_at,
    )
    return [
        line.sku,
        0,
        line.quantity,
        line.quantity,
        uuid.uuid4(),
        line.order_id,
        line.status,
        line.expires_at,
        uuid.uuid4(),
        StockReserved.event_type(),
        encode_event(event).decode(),
        encoded_metadata(uow.metadata.as_dict()),
    ]


def _reserved(uow: UnitOfWork, row: Any) -> tuple[ItemRow, RecordedEvent] | None:
    """The stock row and the event (counted as appended) from a row of ``RESERVED_COLUMNS``
    (None: none taken)."""
    if row is None:
        return None
    item, recorded = ItemRow(*row[:_ITEM_WIDTH]), recorded_event(row[_ITEM_WIDTH:])
    uow.appended_by_statement([recorded])
    return item, recorded


async def stock_rows_of(conn: AsyncConnection, sku: str) -> int:
    """How many stock rows the SKU has now (a new statement, a new snapshot): 0 when its stock
    is not tracked, 1, or one per bucket."""
    rows = await (await asyncpg_of(conn)).fetchval("SELECT count(*) FROM inventory_items WHERE sku = $1", sku)
    return int(rows)


def _reserve_ctes(bucket: str) -> str:
    """The reservation as CTEs: the reservation row and the event go with the UPDATE (whose
    RETURNING is all they need); the event's data is the caller's, with the row's numbers merged
    in, as ``event_fields`` gives them."""
    return (
        f"stock_item AS ({change_item_sql(bucket)}), "
        "stock_held AS (INSERT INTO inventory_reservations "
        "(id, order_id, sku, bucket, quantity, status, expires_at) "
        "SELECT $5::uuid, $6::uuid, stock_item.sku, stock_item.bucket, $3, $7::text, $8::timestamptz "
        "FROM stock_item), "
        f"stock_appended AS ({INSERT_EVENTS} "
        f"SELECT $9::uuid, '{STREAM_TYPE}', {stream_of('stock_item')}, stock_item.stream_version, $10::text, "
        "$11::text::jsonb || jsonb_build_object('sku', stock_item.sku, 'product_id', stock_item.product_id, "
        "'on_hand', stock_item.on_hand, 'reserved', stock_item.reserved, "
        "'available', stock_item.on_hand - stock_item.reserved), "
        "$12::text::jsonb FROM stock_item "
        f"RETURNING {RECORDED_COLUMNS})"
    )


# The stock row's ``ItemRow`` fields, then the event's RECORDED_COLUMNS (read by position).
RESERVED_COLUMNS = (
    "stock_item.sku AS stock_sku, stock_item.on_hand AS stock_on_hand, "
    "stock_item.reserved AS stock_reserved, "
    "stock_item.product_id AS stock_product_id, stock_item.stream_version AS stock_stream_version, "
    "stock_item.bucket AS stock_bucket, stock_appended.*"
)
_ITEM_WIDTH = len(fields(ItemRow))
_RESERVED_WIDTH = _ITEM_WIDTH + RECORDED_WIDTH
RESERVED_FROM = "stock_item CROSS JOIN stock_appended"


def _reserve_sql(bucket: str) -> str:
    return f"WITH {_reserve_ctes(bucket)} SELECT {RESERVED_COLUMNS} FROM {RESERVED_FROM}"


@functools.cache
def _reserving_ctes(offset: int) -> str:
    """``_reserve_ctes`` of one row, its parameters numbered after ``offset`` others (built once
    per offset)."""
    return re.sub(r"\$(\d+)", lambda found: f"${int(found.group(1)) + offset}", _reserve_ctes("0"))


# A bucket that has the units free, starting from bucket $13 (buyers start at different buckets,
# so they rarely even try the same row): the first whose row no other transaction holds; when
# every such row is held, the first of them, queueing for its lock (the UPDATE checks the units
# again once it has the row). Buyers so spread over the buckets instead of all queueing on one.
_BUCKET_WITH_UNITS = (
    "SELECT b.bucket FROM inventory_items AS b WHERE b.sku = $1 AND b.on_hand - b.reserved >= $4 "
    f"ORDER BY (b.bucket + {MAX_BUCKETS} - $13::int) % {MAX_BUCKETS} LIMIT 1"
)
_RESERVE_ONE = _reserve_sql("0")
_RESERVE_IN_A_FREE_BUCKET = _reserve_sql(f"({_BUCKET_WITH_UNITS} FOR UPDATE SKIP LOCKED)")
_RESERVE_IN_A_BUSY_BUCKET = _reserve_sql(f"({_BUCKET_WITH_UNITS})")
# Either attempt can leave a row locked that it did not take: SKIP LOCKED locks a row's newest
# version before finding it has too few units left (kept, harmlessly, even when the attempt then
# takes another bucket: nothing else is waited for after it), and an UPDATE that waited for a
# bucket keeps it when it finds it emptied. Holding one while locking others in bucket order
# could deadlock, so an attempt that takes nothing is rolled back to this savepoint, set before
# the first (before any stock row is locked: it costs no lock time).
_BUCKET_PICK = "reserve_in_a_bucket"


async def _reserve_in_a_bucket(driver: Any, arguments: list[Any]) -> Any:
    await driver.execute(f"SAVEPOINT {_BUCKET_PICK}")
    for statement in (_RESERVE_IN_A_FREE_BUCKET, _RESERVE_IN_A_BUSY_BUCKET):
        row = await driver.fetchrow(statement, *arguments)
        if row is not None:
            return row
        await driver.execute(f"ROLLBACK TO SAVEPOINT {_BUCKET_PICK}")
    return None


async def take_all_or_nothing(
    conn: AsyncConnection, wanted: Sequence[tuple[str, int]], one_row: Collection[str] = ()
) -> tuple[list[tuple[ItemRow, int]], list[str]]:
    """``_take`` in a savepoint: when a line is short, the caller's transaction is left as it
    was (the rows already taken, and their locks, are given back). ``one_row``: SKUs seen with
    their stock in one row (a conditional UPDATE takes those in one statement)."""
    if len(wanted) <= 1:
        # One line changes nothing when it is short (its statements take units only when the
        # whole line is there): no savepoint, two round trips fewer while the rows are locked.
        return await _take(conn, wanted, one_row)
    savepoint = await conn.begin_nested()
    try:
        taken, short = await _take(conn, wanted, one_row)
    except BaseException:
        await savepoint.rollback()
        raise
    if short:
        await savepoint.rollback()
        return [], short
    await savepoint.commit()
    return taken, short


async def _take(
    conn: AsyncConnection, wanted: Sequence[tuple[str, int]], one_row: Collection[str]
) -> tuple[list[tuple[ItemRow, int]], list[str]]:
    """Conditionally reserve each (sku, quantity) in order, from the SKU's rows in bucket
    order; the rows taken (with what each gave) and the SKUs short."""
    driver = await asyncpg_of(conn)
    taken: list[tuple[ItemRow, int]] = []
    short: list[str] = []
    for sku, quantity in wanted:
        if short:
            # Already refused: only find out whether this line is short too, without locking it.
            available = await driver.fetchval(
                "SELECT sum(on_hand - reserved) FROM inventory_items WHERE sku = $1", sku
            )
            if available is not None and available < quantity:
                short.append(sku)
            continue
        if sku in one_row:
            row = await change_item(conn, sku, reserved=quantity, need=quantity)
            if row is not None:
                taken.append((row, quantity))
                continue
            rows_now = await stock_rows_of(conn, sku)
            if rows_now <= 1:
                if rows_now == 1:  # tracked and in one row, so short
                    short.append(sku)
                continue
        rows = await _take_from_buckets(driver, sku, quantity)
        if rows is None:
            short.append(sku)
        else:
            taken.extend(rows)
    return taken, short


async def _take_from_buckets(driver: Any, sku: str, quantity: int) -> list[tuple[ItemRow, int]] | None:
    """The line from the SKU's rows, locked in bucket order; None when they have too little
    (an untracked SKU, with no row, gives an empty list: nothing to take, nothing short)."""
    for _ in range(2):  # a line found short is looked at once more: see the module's docstring
        free = await driver.fetch(_LOCK_BUCKETS, sku)
        if not free:
            return []
        split = take_in_bucket_order([(row["bucket"], row["free"]) for row in free], quantity)
        if split:
            break
    else:
        return None
    rows = await driver.fetch(_TAKE_FROM_BUCKETS, sku, list(split), list(split.values()))
    return [(ItemRow(*row), split[row["bucket"]]) for row in sorted(rows, key=lambda r: r["bucket"])]


# The SKU's rows locked in bucket order, with what each has free once locked (a row locked after
# waiting for it is read as the transaction it waited for left it).
_LOCK_BUCKETS = (
    "SELECT bucket, on_hand - reserved AS free FROM inventory_items WHERE sku = $1 ORDER BY bucket FOR UPDATE"
)
# Units reserved in rows already locked. No condition on the rows' numbers: the statement scans
# them as of its snapshot, which could predate the locks the previous statement waited for (the
# table's CHECK still guards every row).
_TAKE_FROM_BUCKETS = (
    f"UPDATE inventory_items AS i SET reserved = i.reserved + u.take, stream_version = {NEXT_VERSION}, "
    "updated_at = now() FROM unnest($2::smallint[], $3::int[]) AS u(bucket, take) "
    f"WHERE i.sku = $1 AND i.bucket = u.bucket RETURNING {ITEM_COLUMNS}"
)
