"""The version of each read model, as validators need it: the last ledger event that changed it.

A projector's checkpoint moves past every event, including the many it ignores (the search
model skips cart events), so a checkpoint is too coarse for a validator: a cart write would
change the ETag of every catalog page. The version is the (tx_id, position) of the last
*relevant* event at or below the checkpoint, in the order projectors apply events. Every
process computes the same version from the same checkpoint, so ETags hold across gateway
processes and behind a shared cache.

Source of checkpoints: the process's ``CheckpointWatcher`` (in-process projector callbacks and
``NOTIFY projection_checkpoint`` from other processes), re-read from ``projection_checkpoints``
at most every ``resync_seconds`` (and whenever the watcher knows nothing of a read model), which
bounds what a lost notification can cost. A version is recomputed (one indexed query over the
events between the last seen checkpoint and the new one) only when the checkpoint moved; every
other request reads it from memory.

The data a reader sees is at least as new as the checkpoint announced (projections write their
store before their checkpoint commits), so a version taken *before* executing an operation may
only understate what the answer holds: the ETag then changes once more than needed, never too
late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.events import money as money_events
from commands.events.catalog import STREAM_TYPE as PRODUCT_STREAM
from commands.events.catalog_changes import CATALOG_CHANGE_TYPES, STOCK_KEPT, rows_where
from projections import carts, inventory, orders
from queries.freshness import CheckpointWatcher, TxPosition

RESYNC_SECONDS = 1.0


@dataclass(frozen=True)
class Relevance:
    """Which ledger rows change a read model: by stream type or by event type, less the rows
    ``unless`` (an SQL condition on ``ledger_events``) says change nothing in it."""

    column: str
    values: tuple[str, ...]
    unless: str | None = None

    @property
    def where(self) -> str:
        return rows_where(self.column, self.values, self.unless)


# The filters the projectors apply (projections/*.py); a read model not listed changes with
# every event (its version is its checkpoint). The search model's is the catalog's changes
# (``commands/events/catalog_changes.py``: purchases that leave stock change no document),
# spelled as its partial index is, so the last one is one index probe.
RELEVANT_EVENTS: dict[str, Relevance] = {
    "search": Relevance("type", CATALOG_CHANGE_TYPES, unless=STOCK_KEPT),
    "carts": Relevance("stream_type", (carts.STREAM_TYPE,)),
    "orders": Relevance("stream_type", (orders.STREAM_TYPE,)),
    "inventory": Relevance("stream_type", (inventory.STREAM_TYPE,)),
    "pricing": Relevance(
        "stream_type",
        tuple(
            sorted(
                {
                    money_events.ShippingMethodDefined.stream_type,
                    money_events.TaxRateSet.stream_type,
                    money_events.TaxPolicySet.stream_type,
                    money_events.DiscountCodeDefined.stream_type,
                    PRODUCT_STREAM,
                }
            )
        ),
    ),
}
_LAST_RELEVANT = """
SELECT tx_id::text::bigint AS tx, position FROM ledger_events
WHERE (tx_id, position) > (CAST(CAST(:after_tx AS text) AS xid8), :after_position)
  AND (tx_id, position) <= (CAST(CAST(:upto_tx AS text) AS xid8), :upto_position)
  AND {where}
ORDER BY tx_id DESC, position DESC
LIMIT 1
"""
_QUERIES = {
    name: text(_LAST_RELEVANT.format(where=relevance.where)) for name, relevance in RELEVANT_EVENTS.items()
}
_CHECKPOINTS = text("SELECT name, tx_id, position FROM projection_checkpoints")
_EVENT_TX = text("SELECT tx_id::text::bigint FROM ledger_events WHERE position = :position")
_NONE: TxPosition = (0, 0)


@dataclass(frozen=True)
class _Known:
    checkpoint: TxPosition
    version: TxPosition


class ReadModelVersions:
    def __init__(self, engine: AsyncEngine, watcher: CheckpointWatcher) -> None:
        self._engine = engine
        self._watcher = watcher
        self._synced_at = -float("inf")
        self._sync_lock = asyncio.Lock()
        self._known: dict[str, _Known] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def current(self, names: Iterable[str]) -> dict[str, TxPosition]:
        """The version of each named read model now."""
        await self._sync_if_due()
        return {name: await self._version(name) for name in names}

    def generation(self, name: str) -> int:
        """Changes when the model may have been replaced by a rebuild (its version may not)."""
        return self._watcher.generation(name)

    async def covers(self, names: Iterable[str], position: int) -> bool:
        """Whether every named read model has applied the event at ``position`` (False if none yet)."""
        async with self._engine.connect() as conn:
            tx = (await conn.execute(_EVENT_TX, {"position": position})).scalar()
        if tx is None:
            return False
        await self._sync_if_due()
        return all((int(tx), position) <= self._watcher.latest(name) for name in names)

    async def _sync_if_due(self) -> None:
        if time.monotonic() - self._synced_at < RESYNC_SECONDS:
            return
        async with self._sync_lock:
            if time.monotonic() - self._synced_at < RESYNC_SECONDS:
                return
            async with self._engine.connect() as conn:
                rows = (await conn.execute(_CHECKPOINTS)).all()
            for row in rows:
                self._watcher.observe(str(row.name), (int(row.tx_id), int(row.position)))
            self._synced_at = time.monotonic()

    async def _version(self, name: str) -> TxPosition:
        checkpoint = self._watcher.latest(name)
        known = self._known.get(name)
        if known is not None and known.checkpoint == checkpoint:
            return known.version
        query = _QUERIES.get(name)
        if query is None:
            return checkpoint
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            checkpoint = self._watcher.latest(name)
            known = self._known.get(name)
            if known is not None and known.checkpoint == checkpoint:
                return known.version
            # From the last checkpoint seen, unless the model was rebuilt or reset (it moved back).
            after = known if known is not None and known.checkpoint <= checkpoint else None
            since = after.checkpoint if after is not None else _NONE
            async with self._engine.connect() as conn:
                row = (
                    await conn.execute(
                        query,
                        {
                            "after_tx": str(since[0]),
                            "after_position": since[1],
                            "upto_tx": str(checkpoint[0]),
                            "upto_position": checkpoint[1],
                        },
                    )
                ).first()
            if row is not None:
                version: TxPosition = (int(row.tx), int(row.position))
            else:
                version = after.version if after is not None else _NONE
            self._known[name] = _Known(checkpoint, version)
            return version
