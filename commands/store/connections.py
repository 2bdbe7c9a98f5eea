"""Connections for units of work, kept checked out of the engine's pool between them.

Opening a unit of work through SQLAlchemy (pool checkout, ``begin``, ``commit``, return) cost
about 0.45 ms of CPU more than the same transaction on an asyncpg connection already in hand,
measured on this machine: each step is a greenlet switch through the pool and the transaction
machinery. A purchase opens three. These connections stay out of the pool between units of
work, and the transaction is begun and ended on the driver (``commands.store.driver``), so
SQLAlchemy's per-transaction work is skipped; statements written with SQLAlchemy still run on
the same connection, in the same transaction.

Up to ``keep`` connections are kept; beyond that a unit of work borrows one from the pool and
returns it, so nothing here ever waits for a connection (a unit of work that opens another
inside it cannot deadlock on this), and the engine's pool limits stay the only limits.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.store import driver
from commands.store.driver import discard

DEFAULT_KEEP = 16


class CommandConnections:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        keep: int = DEFAULT_KEEP,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self._keep = keep
        # Told after a unit of work that appended to the ledger commits (freshness measures anew).
        self.on_commit = on_commit
        self._idle: list[AsyncConnection] = []
        self._kept: set[AsyncConnection] = set()
        self._closed = False

    @classmethod
    def of(cls, source: AsyncEngine | CommandConnections) -> CommandConnections:
        """``source`` itself, or for an engine connections that keep none: every unit of work
        borrows from the pool (cold paths, tests)."""
        return source if isinstance(source, CommandConnections) else cls(source, keep=0)

    @property
    def kept(self) -> int:
        return len(self._kept)

    async def take(self, *, fresh: bool = False) -> AsyncConnection:
        """A kept idle connection, or (``fresh``: always) one from the pool."""
        while self._idle and not fresh:
            conn = self._idle.pop()
            if driver.session_idle(conn):
                return conn
            # Its session went away while it waited (a restart, an idle timeout): replaced by
            # one from the pool, whose checkout replaces closed sessions too.
            self._kept.discard(conn)
            await discard(conn)
        conn = await self.engine.connect()
        if not self._closed and len(self._kept) < self._keep:
            self._kept.add(conn)
        return conn

    async def give_back(self, conn: AsyncConnection, *, broken: bool = False) -> None:
        """``broken``: a statement failed or was cancelled in a way that may leave the session
        anywhere; the connection is discarded and its slot reconnects."""
        kept = conn in self._kept
        if broken or conn.invalidated or conn.closed or not driver.session_idle(conn):
            self._kept.discard(conn)
            await discard(conn)
        elif kept and not self._closed:
            self._idle.append(conn)
        else:
            self._kept.discard(conn)
            await conn.close()

    async def drop_idle(self) -> None:
        """Discard the idle kept connections (one of them was found dead: the others likely are)."""
        for conn in self._forget_idle():
            await discard(conn)

    async def close(self) -> None:
        """Return the idle kept connections to the pool; those in use go back when released."""
        self._closed = True
        for conn in self._forget_idle():
            await conn.close()

    def _forget_idle(self) -> list[AsyncConnection]:
        idle, self._idle = self._idle, []
        self._kept.difference_update(idle)
        return idle
