"""The lease sweep: active reservations whose lease ran out give their stock back.

Run by the serving gateway's background jobs (``gateway.bootstrap.background``), by any number
of processes at once.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.domain.inventory import ACTIVE, EXPIRED
from commands.domain.order import stream_id as order_stream_id
from commands.events.inventory import ReservationExpired
from commands.inventory.reservation_rows import lock_reservations, settle
from commands.metrics import RESERVATION_EXPIRIES
from commands.store.unit_of_work import MessageMetadata, UnitOfWork

log = logging.getLogger(__name__)

_DUE_ORDERS = text(
    "SELECT order_id FROM inventory_reservations WHERE status = :st AND expires_at <= now() "
    "GROUP BY order_id ORDER BY min(expires_at) LIMIT :limit"
)


async def expire_due(engine: AsyncEngine, metadata: MessageMetadata, *, limit: int = 500) -> list[str]:
    """Release active reservations whose lease ran out; one transaction per order.

    Safe with several sweepers and beside the order's own writers: a sweeper try-locks the
    order's lock, which the settlement, cancellation and the other sweepers take too, and skips
    an order in use (a later sweep takes it). So a settlement never commits reservations that a
    sweep is expiring under it (it would find nothing to commit, or too late, nothing lapsed to
    take again), and the locked re-check of status and expiry releases each lease once.
    An order that fails is logged and left for the next sweep; the others go on.
    """
    async with engine.connect() as conn:
        result = await conn.execute(_DUE_ORDERS, {"st": ACTIVE, "limit": limit})
        due = result.scalars().all()
    expired: list[str] = []
    for order in due:
        order_id = str(order)
        try:
            async with UnitOfWork(engine, metadata) as uow:
                if await _expire_order(uow, order_id):
                    await uow.commit()
                    expired.append(order_id)
        except Exception:
            log.exception("expiring an order's reservations failed", extra={"order_id": order_id})
    return expired


async def _expire_order(uow: UnitOfWork, order_id: str) -> bool:
    conn = uow.conn
    locked = (
        await conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended(CAST(:key AS text), 0))"),
            {"key": order_stream_id(order_id)},
        )
    ).scalar_one()
    if not locked:
        return False
    rows = await lock_reservations(conn, order_id, frozenset({ACTIVE}), due_only=True)
    await settle(
        uow, rows, EXPIRED, lambda f, q: ReservationExpired(**f, order_id=order_id, quantity=q), reserved=-1
    )
    RESERVATION_EXPIRIES.inc(len(rows))
    return bool(rows)
