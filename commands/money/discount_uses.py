"""Discount-code uses, inside the caller's unit of work: reserved at checkout, committed on
authorization, released when the checkout is declined or cancelled before capture.

A code limited to N uses is never used N + 1 times: a use is one conditional
UPDATE of the code's row (``uses < usage_limit``), backed by the table's CHECK.
Concurrent checkouts of one code wait on that row instead of racing: the UPDATE
re-reads ``uses`` once the previous holder commits (or rolls back, giving the
use back with it). Every writer of a code's stream holds the code's row lock
while it appends, so appends to ``discount-code-<code>`` are serialized.
Lock order: after the order's, the cart's and the inventory rows, always last.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text

from commands.domain.money import DiscountUsageLimitReached
from commands.events.money import (
    DiscountCodeUseCommitted,
    DiscountCodeUseReleased,
    DiscountCodeUseReserved,
    discount_code_stream,
)
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import UnitOfWork

RESERVED, COMMITTED, RELEASED = "reserved", "committed", "released"
STREAM_TYPE = DiscountCodeUseReserved.stream_type

_TAKE = text(
    "UPDATE discount_codes SET uses = uses + 1, updated_at = now() "
    "WHERE code = :c AND (usage_limit IS NULL OR uses < usage_limit) "
    "RETURNING uses, per_customer_limit"
)
_CUSTOMER_USES = text(
    "SELECT count(*) FROM discount_code_uses "
    "WHERE code = :c AND customer_id = :cu AND status IN ('reserved', 'committed')"
)
_RECORD = text(
    "INSERT INTO discount_code_uses (order_id, code, customer_id, status) "
    "VALUES (CAST(:o AS uuid), :c, :cu, 'reserved')"
)
_LOCK_CODE = text("SELECT uses FROM discount_codes WHERE code = :c FOR UPDATE")
# On every settled order, with a code or not: straight to asyncpg (no SQLAlchemy statement work).
_MOVE = (
    "UPDATE discount_code_uses SET status = $3, updated_at = now() "
    "WHERE order_id = $1::uuid AND status = ANY($2::text[]) RETURNING code"
)
_GIVE_BACK = text(
    "UPDATE discount_codes SET uses = uses - 1, updated_at = now() WHERE code = :c RETURNING uses"
)


async def reserve(
    uow: UnitOfWork, code: str, order_id: str, customer_key: str | None, field: Sequence[str]
) -> int:
    """Take one use of ``code`` for the order, or raise DiscountUsageLimitReached; returns the uses."""
    conn = uow.conn
    taken = (await conn.execute(_TAKE, {"c": code})).first()
    if taken is None:
        raise DiscountUsageLimitReached(f"the code {code} has been used up", field)
    if customer_key is not None and taken.per_customer_limit is not None:
        # The UPDATE holds the code's row: this customer's other checkouts of the code wait for it.
        used = (await conn.execute(_CUSTOMER_USES, {"c": code, "cu": customer_key})).scalar_one()
        if used >= taken.per_customer_limit:
            raise DiscountUsageLimitReached(f"you have used the code {code} as often as it allows", field)
    await conn.execute(_RECORD, {"o": str(uuid.UUID(order_id)), "c": code, "cu": customer_key})
    event = DiscountCodeUseReserved(code, order_id, customer_key, int(taken.uses))
    await uow.append(STREAM_TYPE, discount_code_stream(code), [event])
    return int(taken.uses)


async def mark_committed(uow: UnitOfWork, order_id: str) -> list[str]:
    """The order's payment was authorized: its reserved use becomes committed. Only the order's
    own use rows are touched (no code's row is locked); returns their codes for
    ``record_committed``, which the settlement runs after the stock rows."""
    return await _move(uow, order_id, (RESERVED,), COMMITTED)


async def record_committed(uow: UnitOfWork, order_id: str, codes: Sequence[str]) -> None:
    """Each code's row locked (after any stock row), its use's event appended."""
    for code in codes:
        await uow.conn.execute(_LOCK_CODE, {"c": code})
        await uow.append(STREAM_TYPE, discount_code_stream(code), [DiscountCodeUseCommitted(code, order_id)])


async def release(uow: UnitOfWork, order_id: str, *, reason: str) -> None:
    """Declined, or cancelled before capture: the order's use goes back to the code."""
    for code in await _move(uow, order_id, (RESERVED, COMMITTED), RELEASED):
        uses = (await uow.conn.execute(_GIVE_BACK, {"c": code})).scalar_one()
        event = DiscountCodeUseReleased(code, order_id, reason, int(uses))
        await uow.append(STREAM_TYPE, discount_code_stream(code), [event])


async def _move(uow: UnitOfWork, order_id: str, from_: Sequence[str], to: str) -> list[str]:
    rows = await (await asyncpg_of(uow.conn)).fetch(_MOVE, uuid.UUID(order_id), list(from_), to)
    return [row["code"] for row in rows]
