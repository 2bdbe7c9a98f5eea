"""The support timeline (PostgreSQL): one entry per customer-relevant event.

Entries are keyed by ledger position, so re-applying is a no-op. Which
customer an entry belongs to is learned from the events that name one (a cart
created signed in, a guest cart attached or merged, an order placed) and kept
in an owners table; entries recorded before their owner was known are
backfilled when it is. That makes the result independent of the order in
which a stream's events arrive, so a rebuild equals the incremental model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.store.driver import PgConnection
from commands.store.ledger.reader import RecordedEvent
from projections.rebuild import COPY_SUFFIX
from projections.runner import Projection
from projections.timeline.entries import EntryDraft, concerns, entry_for

ENTRIES = "timeline_entries"
OWNERS = "timeline_owners"


@dataclass(frozen=True)
class _Row:
    event: RecordedEvent
    draft: EntryDraft


class TimelineProjection:
    store = "postgres"

    def __init__(self, engine: AsyncEngine, *, suffix: str = "", name: str = "timeline") -> None:
        self.name = name
        self._engine = engine
        self.entries = ENTRIES + suffix
        self.owners = OWNERS + suffix

    async def setup(self) -> None:
        if self.entries == ENTRIES:
            return  # the live tables come from the migrations
        async with self._engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {self.entries}, {self.owners}"))
            await conn.execute(text(f"CREATE TABLE {self.entries} (LIKE {ENTRIES} INCLUDING ALL)"))
            await conn.execute(text(f"CREATE TABLE {self.owners} (LIKE {OWNERS} INCLUDING ALL)"))

    def wants(self, event: RecordedEvent) -> bool:
        return concerns(event.stream_type, event.type)

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        rows = [
            _Row(e, draft)
            for e in events
            if (draft := entry_for(e.stream_type, e.stream_id, e.type, e.data)) is not None
        ]
        if not rows:
            return
        known = await self._known_owners(conn, rows)
        owners = dict(known)
        learned: dict[tuple[str, str], str] = {}
        for row in rows:
            draft = row.draft
            if draft.customer_id is not None:
                key = (
                    ("order", draft.order_id) if row.event.stream_type == "order" else ("cart", draft.cart_id)
                )
                if key[1] is not None:
                    owners[(key[0], key[1])] = draft.customer_id
                    # An owner known already was remembered, and its entries filled, back then.
                    if known.get((key[0], key[1])) != draft.customer_id:
                        learned[(key[0], key[1])] = draft.customer_id
        await self._insert_entries(conn, rows, owners)
        await self._remember_and_backfill(conn, learned)

    async def _known_owners(self, conn: PgConnection, rows: Sequence[_Row]) -> dict[tuple[str, str], str]:
        wanted = sorted(
            {("cart", r.draft.cart_id) for r in rows if r.draft.cart_id}
            | {("order", r.draft.order_id) for r in rows if r.draft.order_id}
        )
        # Joined to the keys, not ``key = ANY($1)``: while the table is small (or its statistics
        # old) the plan scans it, and ANY against a parameter compares every row with every key.
        result = await conn.fetch(
            f"SELECT o.kind, o.key, o.customer_id FROM unnest($1::text[], $2::text[]) AS w (kind, key) "
            f"JOIN {self.owners} AS o ON o.kind = w.kind AND o.key = w.key",
            [kind for kind, _ in wanted],
            [key for _, key in wanted],
        )
        return {(r["kind"], r["key"]): r["customer_id"] for r in result}

    async def _insert_entries(
        self, conn: PgConnection, rows: Sequence[_Row], owners: dict[tuple[str, str], str]
    ) -> None:
        def owner_of(draft: EntryDraft) -> str | None:
            if draft.customer_id is not None:
                return draft.customer_id
            if draft.order_id is not None and ("order", draft.order_id) in owners:
                return owners[("order", draft.order_id)]
            if draft.cart_id is not None:
                return owners.get(("cart", draft.cart_id))
            return None

        await conn.execute(
            f"INSERT INTO {self.entries} "
            "(position, customer_id, cart_id, order_id, kind, type, summary, data, at) "
            "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
            "$7::text[], $8::jsonb[], $9::timestamptz[]) "
            "ON CONFLICT (position) DO NOTHING",
            [r.event.position for r in rows],
            [owner_of(r.draft) for r in rows],
            [r.draft.cart_id for r in rows],
            [r.draft.order_id for r in rows],
            [r.draft.kind for r in rows],
            [r.event.type for r in rows],
            [r.draft.summary for r in rows],
            [json.dumps(r.event.data) for r in rows],
            [r.event.recorded_at for r in rows],
        )

    async def _remember_and_backfill(self, conn: PgConnection, learned: dict[tuple[str, str], str]) -> None:
        """Remember new owners and give them their entries recorded before (guest history joins
        the customer's timeline once we learn whose it is), in one statement. An entry naming a
        newly owned cart takes the cart's owner; the order pass leaves such entries alone, so
        the two updates never touch the same row (which one statement must not do)."""
        if not learned:
            return
        await conn.execute(
            f"WITH learned AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) "
            "AS l(kind, key, customer)), "
            f"remembered AS (INSERT INTO {self.owners} (kind, key, customer_id) "
            "SELECT kind, key, customer FROM learned "
            "ON CONFLICT (kind, key) DO UPDATE SET customer_id = EXCLUDED.customer_id), "
            f"carts AS (UPDATE {self.entries} AS e SET customer_id = l.customer FROM learned AS l "
            "WHERE l.kind = 'cart' AND e.cart_id = l.key AND e.customer_id IS NULL) "
            f"UPDATE {self.entries} AS e SET customer_id = l.customer FROM learned AS l "
            "WHERE l.kind = 'order' AND e.order_id = l.key AND e.customer_id IS NULL "
            "AND (e.cart_id IS NULL OR e.cart_id NOT IN (SELECT key FROM learned WHERE kind = 'cart'))",
            [kind for kind, _ in learned],
            [key for _, key in learned],
            list(learned.values()),
        )

    def rebuild_copy(self, generation: str) -> Projection:
        return TimelineProjection(self._engine, suffix=f"_{generation}", name=f"{self.name}{COPY_SUFFIX}")

    async def promote(self, copy: Projection) -> None:
        assert isinstance(copy, TimelineProjection)
        async with self._engine.begin() as conn:
            # Readers see the old tables until this transaction commits, then the new ones.
            await conn.execute(text(f"LOCK TABLE {ENTRIES}, {OWNERS} IN ACCESS EXCLUSIVE MODE"))
            await conn.execute(text(f"DROP TABLE {ENTRIES}, {OWNERS}"))
            await conn.execute(text(f"ALTER TABLE {copy.entries} RENAME TO {ENTRIES}"))
            await conn.execute(text(f"ALTER TABLE {copy.owners} RENAME TO {OWNERS}"))
