"""Reads the support timeline: a customer's entries, newest first, with keyset paging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class TimelineEntryView:
    position: int
    at: datetime
    kind: str
    type: str
    summary: str
    order_id: str | None
    cart_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class TimelinePage:
    entries: list[TimelineEntryView]
    has_next_page: bool


class TimelineQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def for_customer(
        self, customer_id: str, *, kinds: Sequence[str] | None, first: int, before_position: int | None
    ) -> TimelinePage:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT position, at, kind, type, summary, order_id, cart_id, data FROM timeline_entries "
                    "WHERE customer_id = :customer "
                    "AND (CAST(:kinds AS text[]) IS NULL OR kind = ANY(CAST(:kinds AS text[]))) "
                    "AND (CAST(:before AS bigint) IS NULL OR position < CAST(:before AS bigint)) "
                    "ORDER BY position DESC LIMIT :limit"
                ),
                {
                    "customer": customer_id,
                    "kinds": list(kinds) if kinds else None,
                    "before": before_position,
                    "limit": first + 1,
                },
            )
            rows = result.all()
        entries = [
            TimelineEntryView(r.position, r.at, r.kind, r.type, r.summary, r.order_id, r.cart_id, r.data)
            for r in rows[:first]
        ]
        return TimelinePage(entries, has_next_page=len(rows) > first)
