"""Waking the ledger's readers after appends commit, outside the transactions that appended.

A NOTIFY sent inside a transaction takes one database-wide lock at its commit and keeps it
until the commit is flushed: every appending transaction's commit then waits for every
other's, one flush at a time, and a transaction holding a hot stock row holds it through that
wait too. So the appends announce nothing themselves. This process's readers are woken at
once (``local``); other processes hear one ``NOTIFY ledger`` sent on a connection of its own,
after the commit, for however many commits happened while the previous one was on its way
(and, under a stream of commits, within ``GAP_SECONDS`` of it).

What readers rely on: every commit is followed by a notification sent after it committed
(a reader woken by it sees the commit). A commit that finds a notification on its way (sent,
maybe, before it committed) has another sent when that one returns. A notification that cannot
be sent (the database unreachable) is given up after a few tries: readers poll as well, so a
wake-up may come late, never be missed for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

import asyncpg

from commands.store.driver import PgConnection
from commands.store.ledger.reader import LEDGER_CHANNEL

log = logging.getLogger(__name__)

NOTIFY = "SELECT pg_notify($1, $2)"
TRIES = 4
FIRST_RETRY_SECONDS = 0.05
# Under a stream of commits, notifications go at most this often (each is a transaction).
GAP_SECONDS = 0.01
CONNECT_SECONDS = 2.0
# A notification's transaction writes nothing that must survive a crash, and PostgreSQL sends
# the notification at its commit either way: its commit need not wait for the WAL's flush to
# disk, which every other transaction's commit does.
UNFLUSHED = {"synchronous_commit": "off"}
CLOSE_SECONDS = 2.0


class LedgerAnnouncer:
    """``dsn``: asyncpg's form of the database's URL. Its connection is its own, not the pool's:
    a pool exhausted by a flash sale must not hold the other processes' wake-ups back."""

    def __init__(self, dsn: str, *, local: Callable[[], None] | None = None) -> None:
        self._dsn = dsn
        self._local = local
        # The payload of this process's notifications: its own listener knows them as its own
        # (``own``), its readers having been woken already.
        self.payload = f"announcer:{uuid.uuid4().hex}"
        self._sending: asyncio.Task[None] | None = None
        self._again = False
        self._conn: PgConnection | None = None
        self._closed = False
        self.sent = 0

    def wake_locally(self, local: Callable[[], None]) -> None:
        """Call ``local`` at each commit, before the notification is sent."""
        self._local = local

    @property
    def busy(self) -> bool:
        """Whether a notification is on its way (or waiting to be tried again)."""
        return self._sending is not None

    def own(self, payload: str) -> bool:
        return payload == self.payload

    def committed(self) -> None:
        """A transaction that appended has committed."""
        if not self._closed:
            if self._sending is not None:
                # The one on its way may have been sent before this commit: one more after it.
                self._again = True
            else:
                self._sending = asyncio.create_task(self._send(), name="ledger-announcer")
        if self._local is not None:
            try:
                self._local()
            except Exception:
                log.exception("waking this process's ledger readers failed")

    async def _send(self) -> None:
        try:
            tries = 0
            while not self._closed:
                # Cleared before sending: a commit from now on asks for the next one.
                self._again = False
                started = asyncio.get_running_loop().time()
                try:
                    await self._notify()
                    tries = 0
                    if self._again:
                        # Commits keep coming: gather them a moment, one notification for all.
                        await asyncio.sleep(
                            max(0.0, started + GAP_SECONDS - asyncio.get_running_loop().time())
                        )
                except Exception:
                    tries += 1
                    if tries >= TRIES:
                        log.warning("ledger notification given up; readers will poll", exc_info=True)
                        return
                    self._again = True
                    await asyncio.sleep(FIRST_RETRY_SECONDS * 2 ** (tries - 1))
                if not self._again:
                    return
        finally:
            self._sending = None

    async def _notify(self) -> None:
        conn = self._conn
        try:
            if conn is None:
                conn = self._conn = await asyncpg.connect(
                    self._dsn, timeout=CONNECT_SECONDS, server_settings=UNFLUSHED
                )
            # Outside a transaction: the statement commits, and the notification goes, at once.
            await conn.execute(NOTIFY, LEDGER_CHANNEL, self.payload)
            self.sent += 1
        except BaseException:
            # A failed or cancelled statement may leave the session anywhere: never reuse it.
            self._conn = None
            if conn is not None:
                conn.terminate()
            raise

    async def close(self) -> None:
        """Send what is due (for a bounded time), then let the connection go."""
        deadline = asyncio.get_running_loop().time() + CLOSE_SECONDS
        # A commit while this waits starts (or extends) a send: wait for that one too.
        while (sending := self._sending) is not None and asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(Exception, TimeoutError):
                remaining = deadline - asyncio.get_running_loop().time()
                await asyncio.wait_for(asyncio.shield(sending), max(remaining, 0.001))
        self._closed = True
        sending, self._sending = self._sending, None
        if sending is not None:
            sending.cancel()
            with contextlib.suppress(BaseException):
                await sending
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=CLOSE_SECONDS)
