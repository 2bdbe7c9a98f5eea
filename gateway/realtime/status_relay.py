"""Order status changes from the ``orders`` projection to ``orderUpdated`` subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from commands.store.ledger.reader import Checkpoint
from gateway.realtime.subscriptions import OrderUpdatesBroker
from projections.orders import NAME, StatusChange
from queries.freshness import CheckpointWatcher

log = logging.getLogger(__name__)


class StatusRelay:
    """Publishes the projection's status changes once their batch has committed.

    The projection reports changes from inside its transaction; the checkpoint
    watcher hears about a batch only after the commit, so a change is sent when
    the announced checkpoint reaches it. A rolled-back batch is re-applied and
    reported again; subscribers compare statuses, so a repeat is harmless.
    """

    def __init__(self, watcher: CheckpointWatcher, broker: OrderUpdatesBroker, name: str = NAME) -> None:
        self._watcher = watcher
        self._broker = broker
        self._name = name
        self._pending: list[StatusChange] = []
        self._task: asyncio.Task[None] | None = None

    def notice(self, change: StatusChange) -> None:
        self._pending.append(change)
        if self._task is None or self._task.done():
            # Started on first use: apply() always runs inside the event loop.
            self._task = asyncio.create_task(self._run(), name=f"status-relay:{self._name}")

    async def _run(self) -> None:
        while True:
            # Subscribe before looking, so an announcement in between still wakes us.
            changed = self._watcher.changed(self._name)
            await self._publish_committed(Checkpoint(*self._watcher.latest(self._name)))
            await changed.wait()

    async def _publish_committed(self, upto: Checkpoint) -> None:
        ready = [c for c in self._pending if c.checkpoint <= upto]
        if not ready:
            return
        self._pending = [c for c in self._pending if c.checkpoint > upto]
        # Subscribers read the order again on every message: its newest change says it all.
        newest: dict[str, StatusChange] = {}
        for change in ready:
            known = newest.get(change.order_id)
            if known is None or change.position > known.position:
                newest[change.order_id] = change
        updates = [
            (
                change.order_id,
                {
                    "orderId": change.order_id,
                    "status": change.status,
                    "version": change.stream_version,
                    "position": change.position,
                },
            )
            for change in newest.values()
        ]
        try:
            await self._broker.publish_many(updates)
        except Exception:
            # At-most-once by design: subscribers also re-read on a timer.
            log.warning("could not publish order status changes", exc_info=True)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
