"""PostgreSQL LISTEN/NOTIFY fan-out: one connection per process.

Projectors wake on ``ledger`` notifications; read-your-writes waiters wake on
checkpoint announcements. After a reconnect every subscriber is called once,
since notifications sent while disconnected are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

Subscriber = Callable[[str], None]
RECONNECTED = ""


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class NotificationHub:
    def __init__(self, database_url: str) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        """``subscriber(payload)``; called with RECONNECTED ("") after a reconnect."""
        self._subscribers.setdefault(channel, []).append(subscriber)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notification-hub")
        await asyncio.wait_for(self._connected.wait(), 30)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("notification hub cannot connect: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            try:
                for channel in self._subscribers:
                    await conn.add_listener(channel, self._dispatch)
                if self._connected.is_set():
                    self._broadcast(RECONNECTED)
                self._connected.set()
                await lost.wait()
                log.warning("notification hub lost its connection; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))

    def _dispatch(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        for subscriber in self._subscribers.get(channel, ()):
            try:
                subscriber(payload)
            except Exception:
                log.exception("notification subscriber failed", extra={"channel": channel})

    def _broadcast(self, payload: str) -> None:
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber(payload)
