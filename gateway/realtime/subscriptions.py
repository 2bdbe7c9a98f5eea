"""Order updates over Redis pub/sub, so any gateway instance can serve ``orderUpdated``.

Whoever changes an order publishes; each gateway process keeps one pub/sub
connection, subscribes to a channel while at least one local subscriber
wants it, and fans messages out to per-subscriber queues. Pub/sub is
at-most-once: a subscriber should read the order's current state when it
starts (and after a reconnect) and treat messages as "something changed".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis.asyncio as redis_async
from redis.asyncio.client import PubSub

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
# A subscriber this far behind loses its oldest updates rather than holding memory.
QUEUE_SIZE = 100


class OrderUpdatesBroker:
    def __init__(self, redis: redis_async.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}order-updates:"
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._lock = asyncio.Lock()

    def channel(self, order_id: str) -> str:
        return self._prefix + order_id

    async def publish(self, order_id: str, payload: Mapping[str, Any]) -> int:
        """Send ``payload`` (JSON-serializable) to every subscriber; returns the processes reached."""
        (receivers,) = await self.publish_many([(order_id, payload)])
        return receivers

    async def publish_many(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> list[int]:
        """Several (order id, payload) updates in one round trip; the processes each reached."""
        pipe = self._redis.pipeline(transaction=False)
        for order_id, payload in updates:
            pipe.publish(self.channel(order_id), json.dumps(payload, default=str))
        return [int(receivers) for receivers in await pipe.execute()]

    async def subscribe(self, order_id: str) -> AsyncIterator[dict[str, Any]]:
        """Updates for one order, until the consumer stops iterating."""
        channel = self.channel(order_id)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        await self._join(channel, queue)
        try:
            while True:
                yield await queue.get()
        finally:
            await self._leave(channel, queue)

    async def _join(self, channel: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub()
            listeners = self._queues.setdefault(channel, set())
            listeners.add(queue)
            if len(listeners) == 1:
                await self._pubsub.subscribe(channel)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(self._pubsub), name="order-updates")

    async def _leave(self, channel: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        async with self._lock:
            listeners = self._queues.get(channel)
            if listeners is None:
                return
            listeners.discard(queue)
            if not listeners:
                del self._queues[channel]
                if self._pubsub is not None:
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(channel)

    async def _read(self, pubsub: PubSub) -> None:
        delay = 0.1
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # redis-py reconnects and resubscribes on the next read.
                log.warning("order updates: pub/sub read failed: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        try:
            payload = json.loads(message["data"])
        except (TypeError, ValueError):
            log.warning("order updates: dropped a message that is not JSON", extra={"channel": channel})
            return
        for queue in self._queues.get(channel, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(payload)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        self._queues.clear()
        self._pubsub = None
        self._reader = None
