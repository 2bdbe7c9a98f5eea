"""Order events appended straight to the ledger (no checkout needed), and the ``order_view``
rows as plain dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.events import order as ev
from commands.store.ledger.reader import RecordedEvent
from commands.store.unit_of_work import MessageMetadata, UnitOfWork

META = MessageMetadata(actor="test")


async def append(engine: AsyncEngine, order_id: str, *events: ev.OrderEvent) -> list[RecordedEvent]:
    async with UnitOfWork(engine, META) as uow:
        recorded = await uow.append("order", f"order-{order_id}", events)
        await uow.commit()
    return recorded


async def view_rows(engine: AsyncEngine, table: str = "order_view") -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(f"SELECT * FROM {table} ORDER BY order_id"))
        return {row.order_id: dict(row._mapping) for row in result}


def positions(recorded: Sequence[RecordedEvent]) -> list[int]:
    return [r.position for r in recorded]
