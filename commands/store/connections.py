"""Connections for units of work: a fixed number kept out of the engine's pool, handed out in
the order units of work asked for them.

Opening a unit of work through SQLAlchemy (pool checkout, ``begin``, ``commit``, return) cost
about 0.45 ms of CPU more than the same transaction on an asyncpg connection already in hand,
measured on this machine: each step is a greenlet switch through the pool and the transaction
machinery. A purchase opens three. These connections stay out of the pool between units of
work, and the transaction is begun and ended on the driver (``commands.store.driver``), so
SQLAlchemy's per-transaction work is skipped; statements written with SQLAlchemy still run on
the same connection, in the same transaction.

At most ``keep`` connections are opened and kept. When all are in use, a unit of work waits for
one, first come first served: a connection given back goes to the longest waiter, never to a
newcomer. Units of work marked ``urgent`` (the settlement of a payment, which completes an
order whose stock is already held) are served before the others waiting, four in a row at most
while others wait: work in progress finishes before new work starts, and never starves it.
(Connections used to be borrowed from the pool past a smaller kept number, and a kept one given
back went to whoever asked next: under a flash sale, with the pool exhausted, pool waiters were
passed over again and again while newcomers took the kept ones, and one unit of work in ten
waited 0.4 s or more for a connection; see ``docs/scaling.md`` section 9.)

A task that already holds one of these and opens another unit of work (nested) borrows from the
pool instead, as does every unit of work when ``keep`` is 0: waiting in turn while holding a
connection could wait forever for itself. The engine's pool keeps its own limit for the rest of
the process (reads, projectors, claims), so it should be larger than ``keep``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from dataclasses import dataclass

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.store import driver
from commands.store.driver import discard
from commands.store.ledger.announcer import LedgerAnnouncer

DEFAULT_KEEP = 20
# Urgent units of work served in a row, at most, while others wait.
URGENT_IN_A_ROW = 4
# How long a unit of work waits for its turn, as SQLAlchemy's pool waits for a connection.
WAIT_SECONDS = 30.0

# Whether the running task holds a kept connection (a context variable: per task).
_holding: contextvars.ContextVar[bool] = contextvars.ContextVar("holding_a_command_connection", default=False)


@dataclass(frozen=True)
class ConnectionStats:
    """Now: connections kept (in use or idle) and units of work waiting; since start: units of
    work served a kept connection, how many of them waited for it, and for how long in all."""

    kept: int
    idle: int
    waiting: int
    taken: int
    waited: int
    seconds_waited: float


class CommandConnections:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        keep: int = DEFAULT_KEEP,
        announcer: LedgerAnnouncer | None = None,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self.engine = engine
        self._keep = keep
        self._wait_seconds = wait_seconds
        # Told after a unit of work that appended to the ledger commits: wakes the ledger's readers
        # (this process's at once, freshness included); without one, the unit of work's own
        # connection sends the notification once it has committed.
        self.announcer = announcer
        self._idle: list[AsyncConnection] = []
        self._kept: set[AsyncConnection] = set()
        self._opening = 0
        # Slots handed to waiters (with a None) that they have not opened yet: no newcomer takes them.
        self._reserved = 0
        self._urgent_in_a_row = 0
        self._closing: set[asyncio.Task[None]] = set()
        # Each waiter is handed a connection, or None: a slot is free, open one. Urgent ones first.
        self._urgent: deque[asyncio.Future[AsyncConnection | None]] = deque()
        self._waiting: deque[asyncio.Future[AsyncConnection | None]] = deque()
        self._closed = False
        self._taken = 0
        self._waited = 0
        self._seconds_waited = 0.0

    @classmethod
    def of(cls, source: AsyncEngine | CommandConnections) -> CommandConnections:
        """``source`` itself, or for an engine connections that keep none: every unit of work
        borrows from the pool (cold paths, tests)."""
        return source if isinstance(source, CommandConnections) else cls(source, keep=0)

    @property
    def kept(self) -> int:
        return len(self._kept)

    def stats(self) -> ConnectionStats:
        return ConnectionStats(
            len(self._kept), len(self._idle), self.waiting, self._taken, self._waited, self._seconds_waited
        )

    @property
    def waiting(self) -> int:
        # A waiter leaves its queue when it is handed a connection, cancelled or timed out.
        return len(self._urgent) + len(self._waiting)

    async def take(self, *, fresh: bool = False, urgent: bool = False) -> AsyncConnection:
        """A kept connection (``fresh``: not one that sat idle), in turn (``urgent``: ahead of
        those not urgent); borrowed from the pool when nested in another or when keeping none."""
        if self._keep == 0 or self._closed or _holding.get():
            return await self.engine.connect()
        ahead = len(self._urgent) if urgent else self.waiting
        conn = None if fresh or ahead else await self._live_idle()
        if conn is None and not ahead:
            if self._free_slots() <= 0 and self._idle:
                # Only a ``fresh`` take skips idle connections: one of them makes room.
                idle = self._idle.pop(0)
                self._kept.discard(idle)
                await discard(idle)
            if self._free_slots() > 0:
                conn = await self._open()
        if conn is None:
            handed = await self._wait_turn(self._urgent if urgent else self._waiting)
            if handed is not None:
                conn = handed
            elif self._closed:
                return await self.engine.connect()
            else:
                self._reserved -= 1  # the slot handed over with the None is this waiter's
                conn = await self._open()
        self._taken += 1
        _holding.set(True)
        return conn

    async def give_back(self, conn: AsyncConnection, *, broken: bool = False) -> None:
        """``broken``: a statement failed or was cancelled in a way that may leave the session
        anywhere; the connection is discarded and its slot reconnects."""
        unusable = broken or conn.invalidated or conn.closed or not driver.session_idle(conn)
        if conn not in self._kept:  # borrowed from the pool
            await (discard(conn) if unusable else conn.close())
            return
        _holding.set(False)
        if unusable:
            self._kept.discard(conn)
            self._hand_over(None)
            await discard(conn)
        elif self._closed:
            self._kept.discard(conn)
            await conn.close()
        else:
            self._hand_over(conn)

    async def drop_idle(self) -> None:
        """Discard the idle kept connections (one of them was found dead: the others likely are)."""
        for conn in self._forget_idle():
            await discard(conn)

    async def close(self) -> None:
        """Return the idle kept connections to the pool; those in use go back when released."""
        self._closed = True
        for queue in (self._urgent, self._waiting):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
        try:
            for conn in self._forget_idle():
                await conn.close()
        finally:
            if self.announcer is not None:
                await self.announcer.close()

    async def _live_idle(self) -> AsyncConnection | None:
        while self._idle:
            conn = self._idle.pop()
            if driver.session_idle(conn):
                return conn
            # Its session went away while it waited (a restart, an idle timeout): its slot is
            # reopened from the pool, whose checkout replaces closed sessions too.
            self._kept.discard(conn)
            await discard(conn)
        return None

    async def _open(self) -> AsyncConnection:
        self._opening += 1
        try:
            conn = await self.engine.connect()
        except BaseException:
            self._hand_over(None)  # the slot is free again for the next waiter
            raise
        finally:
            self._opening -= 1
        self._kept.add(conn)
        return conn

    async def _wait_turn(
        self, queue: deque[asyncio.Future[AsyncConnection | None]]
    ) -> AsyncConnection | None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[AsyncConnection | None] = loop.create_future()
        queue.append(waiter)
        # A timer, not asyncio.timeout(): a third of the cost, and this runs for most units of
        # work under load.
        timer = loop.call_later(self._wait_seconds, self._expire, waiter)
        started = loop.time()
        self._waited += 1
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed one (or a slot) just as this waiter was cancelled: the next in line gets it.
                handed = waiter.result()
                if handed is not None:
                    self._hand_over(handed)
                elif not self._closed:
                    self._reserved -= 1
                    self._hand_over(None)
            elif waiter in queue:
                queue.remove(waiter)
            raise
        finally:
            timer.cancel()
            self._seconds_waited += loop.time() - started

    def _expire(self, waiter: asyncio.Future[AsyncConnection | None]) -> None:
        if not waiter.done():
            waiter.set_exception(
                exc.TimeoutError(
                    f"no command connection free within {self._wait_seconds:g} s ({self._keep} in use)"
                )
            )

    def _hand_over(self, conn: AsyncConnection | None) -> None:
        """To the next waiter; else ``conn`` waits idle (None: a freed slot nobody waits for).
        A None handed over reserves the slot for its waiter."""
        waiter = self._next_waiter()
        if waiter is not None:
            if conn is None:
                self._reserved += 1
            waiter.set_result(conn)
        elif conn is None:
            return
        elif self._closed:
            # Handed back after close() (a waiter cancelled as it was served): nobody keeps it.
            self._kept.discard(conn)
            task = asyncio.get_running_loop().create_task(conn.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        else:
            self._idle.append(conn)

    def _next_waiter(self) -> asyncio.Future[AsyncConnection | None] | None:
        """The longest urgent waiter, else the longest waiter; but after ``URGENT_IN_A_ROW``
        urgent ones in a row, the longest other waiter first (urgent work never starves the rest)."""
        others_first = self._urgent_in_a_row >= URGENT_IN_A_ROW
        for queue in (self._waiting, self._urgent) if others_first else (self._urgent, self._waiting):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    self._urgent_in_a_row = self._urgent_in_a_row + 1 if queue is self._urgent else 0
                    return waiter
        return None

    def _free_slots(self) -> int:
        return self._keep - len(self._kept) - self._opening - self._reserved

    def _forget_idle(self) -> list[AsyncConnection]:
        idle, self._idle = self._idle, []
        self._kept.difference_update(idle)
        for _ in idle:
            self._hand_over(None)
        return idle
