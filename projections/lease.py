"""Projection leases: one owner per projection across every process, held through PostgreSQL.

Each process holds its leases as session advisory locks on ONE dedicated connection (a
``LeaseKeeper``, outside the pool), keyed ``hashtextextended('projection:<name>', 0)`` as
``docs/scaling.md`` section 2 describes. Chosen over a lease row with a heartbeat because
PostgreSQL ends the lock with the session: an owner killed with -9 releases its leases as soon
as its connection is gone, with no expiry to tune and no clock to trust. Processes without the
lease stand by and retry every second or so, and on every control notification.

A lease does not fence by itself: an owner whose session just died may still commit the batch
in hand. The fence is the checkpoint: ``checkpoints.advance`` moves it only from the checkpoint
the batch started at, in the batch's transaction, so a stale owner's batch rolls back (with its
rows, for PostgreSQL read models) instead of applying events twice or skipping any.

Pauses (rebuilds): whoever needs a projection quiet takes ``projection-pause:<name>``, sends a
control notification, then takes the lease itself (``hold_paused``). An owner that sees a pause
(the notification, or its periodic check) finishes its batch and releases the lease; no process
acquires a lease while its pause is held. The pauser's session ending releases both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CONTROL_CHANNEL = "projection_control"
PAUSE_WAIT_SECONDS = 30.0


class LeaseUnavailable(Exception):
    """The lease could not be taken in time."""


def lease_key(name: str) -> str:
    return f"projection:{name}"


def pause_key(name: str) -> str:
    return f"projection-pause:{name}"


def rebuild_key(name: str) -> str:
    return f"projection-rebuild:{name}"


def process_label(role: str = "") -> str:
    """How a process names itself in ``pg_stat_activity`` (and so as a lease owner)."""
    label = f"{socket.gethostname()}:{os.getpid()}"
    return f"{label} {role}".strip()[:63]


# What a statement on a session that is gone raises. A session the server ended (terminated)
# while idle can also surface as asyncpg's InternalClientError, its protocol still consuming
# the termination when the next statement starts (seen in CI).
_SESSION_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


class LeaseKeeper:
    """The leases of one process, on one dedicated PostgreSQL session."""

    def __init__(self, database_url: str, holder: str | None = None) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.holder = holder or process_label()
        self._conn: asyncpg.Connection | None = None
        # One statement at a time on the session; also orders acquire against release.
        self._lock = asyncio.Lock()
        self._held: set[str] = set()

    def holds(self, name: str) -> bool:
        return lease_key(name) in self._held

    async def acquire(self, name: str) -> bool:
        """Take the lease of ``name`` if it is free and not paused; True when held."""
        if self.holds(name):
            return True
        key = lease_key(name)
        async with self._lock:
            conn = await self._session()
            try:
                if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key):
                    return False
                self._held.add(key)
                # Checked after taking the lease: a pause taken in between is announced after
                # it was taken, and the owner's next check sees it.
                if await self._paused(conn, name):
                    await self._unlock(conn, key)
                    return False
            except _SESSION_ERRORS:
                await self._lost()
                raise
        return True

    async def confirm(self, name: str) -> bool:
        """Whether the lease is still ours and no pause asks for it; releases it if paused."""
        if not self.holds(name):
            return False
        async with self._lock:
            conn = await self._session()
            if not self.holds(name):
                return False  # the session ended (and its locks with it) since the last statement
            try:
                if not await self._paused(conn, name):
                    return True
                await self._unlock(conn, lease_key(name))
            except _SESSION_ERRORS:
                await self._lost()
                return False
        log.info("projection paused: lease released", extra={"projection": name})
        return False

    async def release(self, name: str) -> None:
        key = lease_key(name)
        if key not in self._held:
            return
        async with self._lock:
            try:
                await self._unlock(await self._session(), key)
            except _SESSION_ERRORS:
                await self._lost()

    async def try_exclusive(self, key: str) -> bool:
        """Take a named advisory lock on this session (a rebuild's claim); True when taken."""
        async with self._lock:
            conn = await self._session()
            if await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key):
                self._held.add(key)
                return True
            return False

    async def taken_elsewhere(self, key: str) -> bool:
        """Whether another session holds the advisory lock ``key`` right now (a hint: it may change)."""
        async with self._lock:
            conn = await self._session()
            return bool(await conn.fetchval(_HELD_ELSEWHERE, key))

    async def hold_paused(self, name: str, timeout: float = PAUSE_WAIT_SECONDS) -> None:
        """Pause the live projector of ``name``, wherever it runs, and take its lease."""
        key = pause_key(name)
        async with self._lock:
            conn = await self._session()
            await conn.fetchval("SELECT pg_advisory_lock(hashtextextended($1, 0))", key)
            self._held.add(key)
            await conn.execute("SELECT pg_notify($1, $2)", CONTROL_CHANNEL, name)
        deadline = time.monotonic() + timeout
        while True:
            async with self._lock:
                conn = await self._session()
                if await conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", lease_key(name)
                ):
                    self._held.add(lease_key(name))
                    return
            if time.monotonic() >= deadline:
                owner = await self.owner(name)
                raise LeaseUnavailable(
                    f"the live projector of {name} ({owner}) did not pause within {timeout:.0f} s"
                )
            await asyncio.sleep(0.02)

    async def owner(self, name: str) -> str | None:
        async with self._lock:
            return await lease_owner(await self._session(), name)

    async def close(self) -> None:
        """Release everything this session holds and tell standbys to try now."""
        async with self._lock:
            conn, self._conn = self._conn, None
            released = {
                key.removeprefix("projection:") for key in self._held if key.startswith("projection:")
            }
            self._held.clear()
            if conn is None:
                return
            with contextlib.suppress(*_SESSION_ERRORS):
                await conn.execute("SELECT pg_advisory_unlock_all()")
                for name in sorted(released):
                    await conn.execute("SELECT pg_notify($1, $2)", CONTROL_CHANNEL, name)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

    async def _session(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            if self._held:
                # The session ended under us: its locks went with it.
                self._held.clear()
            self._conn = await asyncpg.connect(self._dsn, server_settings={"application_name": self.holder})
        return self._conn

    async def _paused(self, conn: asyncpg.Connection, name: str) -> bool:
        return bool(await conn.fetchval(_HELD_ELSEWHERE, pause_key(name)))

    async def _unlock(self, conn: asyncpg.Connection, key: str) -> None:
        self._held.discard(key)
        await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)

    async def _lost(self) -> None:
        log.warning("lease session lost: every lease of this process is gone", extra={"holder": self.holder})
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            conn.terminate()


# Whether another session holds the advisory lock: taken shared and given back at once if free,
# in one round trip (CASE evaluates its THEN branch only when the lock was taken).
_HELD_ELSEWHERE = (
    "SELECT CASE WHEN pg_try_advisory_lock_shared(hashtextextended($1, 0)) "
    "THEN NOT pg_advisory_unlock_shared(hashtextextended($1, 0)) ELSE true END"
)


async def lease_owner(conn: asyncpg.Connection, name: str) -> str | None:
    return await conn.fetchval(OWNER_QUERY, lease_key(name))  # type: ignore[no-any-return]


# A bigint advisory key shows in pg_locks as classid (high 32 bits) and objid (low 32 bits).
# queries/projection_status.py reads owners the same way (it may not import this package).
OWNER_QUERY = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.mode = 'ExclusiveLock' AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0) LIMIT 1"
)
