"""Unit of work: one PostgreSQL transaction for owned tables and ledger appends."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields, replace
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.events.base import Event
from commands.store import driver, literals, writes_at_commit
from commands.store.connections import CommandConnections
from commands.store.ledger import announcer, reader, writer
from commands.store.ledger.reader import RecordedEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessageMetadata:
    """Who asked and why; copied into every appended event's metadata."""

    request_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    idempotency_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every value, and each append asks for this.
        return {name: value for name in _METADATA_FIELDS if (value := getattr(self, name)) is not None}

    def with_idempotency_key(self, key: str) -> MessageMetadata:
        return replace(self, idempotency_key=key)


_METADATA_FIELDS = tuple(f.name for f in fields(MessageMetadata))


class UnitOfWork:
    """One transaction; commit makes appends and table writes visible together.

    ``source``: kept connections (``CommandConnections``, the hot paths), or an engine to borrow
    a connection from for this unit of work alone. ``urgent``: it finishes work in progress, and
    is served before others waiting for a kept connection. ``lock``: the advisory lock key (or keys,
    in the order it would take them) its first statements would take (a stream's lock): taken
    with the BEGIN, round trips fewer. ``transaction=False``: no BEGIN and no COMMIT, each
    statement commits on its own; only for a handler whose writes are one statement (two round
    trips fewer), and so with no lock, no writes at commit and nothing to roll back.
    ``fresh``: on a connection that did not sit idle (a retry after a kept one was found dead;
    without a BEGIN, it is the handler's first statement that finds it).
    """

    def __init__(
        self,
        source: AsyncEngine | CommandConnections,
        metadata: MessageMetadata,
        *,
        urgent: bool = False,
        lock: str | Sequence[str] | None = None,
        transaction: bool = True,
        fresh: bool = False,
    ) -> None:
        self._connections = CommandConnections.of(source)
        self._urgent = urgent
        self._locks: tuple[str, ...] = (
            () if lock is None else (lock,) if isinstance(lock, str) else tuple(lock)
        )
        if self._locks and not transaction:
            raise ValueError("an advisory lock needs a transaction to hold it")
        self._transaction = transaction
        self._fresh = fresh
        for key in self._locks:
            literals.text(key)  # a key that cannot be sent fails here, before a connection is taken
        self.metadata = metadata
        self._conn: AsyncConnection | None = None
        self.appended: list[RecordedEvent] = []
        self.committed = False
        self._session_unknown = False
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._writes_at_commit: list[tuple[str, tuple[Any, ...]]] = []

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("unit of work is not open")
        return self._conn

    @property
    def last_position(self) -> int | None:
        """Ledger position of the last event this unit of work appended."""
        return max((e.position for e in self.appended), default=None)

    async def __aenter__(self) -> UnitOfWork:
        # A kept connection may have died while idle (a database restart, and then the other idle
        # ones with it): one more try, on a connection fresh from the pool, before the command fails.
        for fresh in (False, True):
            conn = await self._connections.take(fresh=fresh or self._fresh, urgent=self._urgent)
            if not self._transaction:
                self._conn = conn
                return self
            try:
                await driver.begin(conn, locks=self._locks)
            except BaseException as error:
                # A live session that failed the lock (a timeout, a cancellation) is no dead one.
                alive = bool(self._locks) and not driver.closed(conn)
                await self._connections.give_back(conn, broken=True)
                if fresh or alive or not isinstance(error, Exception):
                    raise
                await self._connections.drop_idle()
                continue
            self._conn = conn
            return self
        raise AssertionError("unreachable")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self.conn, None
        broken = True
        try:
            if not self._transaction:
                # Whatever ran has committed; nothing to roll back. A statement interrupted (a
                # cancellation, a timeout) may still be running: that session is not kept.
                interrupted = exc is not None and not isinstance(exc, asyncpg.PostgresError)
                if self.appended and not self.committed:
                    # Its appends committed as they ran, whatever failed after them; an interrupted
                    # session is not used to say so.
                    await self._committed(None if interrupted else conn)
                unknown = interrupted or self._session_unknown
                broken = unknown or _transaction_open(conn) or driver.closed(conn)
                return
            if not self.committed:
                self.appended.clear()
                if conn.invalidated or conn.closed:
                    # SQLAlchemy saw a statement of its own fail with the session (a cancellation
                    # or a disconnect): nothing to roll back on it, and touching it would raise
                    # in place of the exception on its way out. It is discarded below.
                    return
                await driver.rollback(conn)
            broken = self._session_unknown
        finally:
            # A rollback that fails (a dead connection, a statement still running after a
            # cancellation) leaves the session unknown: it is not kept.
            await self._connections.give_back(conn, broken=broken)

    async def append(
        self,
        stream_type: str,
        stream_id: str,
        events: Sequence[Event],
        *,
        expected_version: int | None = None,
    ) -> list[RecordedEvent]:
        recorded = await writer.append(
            self.conn,
            stream_type,
            stream_id,
            events,
            expected_version=expected_version,
            metadata=self.metadata.as_dict(),
        )
        self.appended.extend(recorded)
        return recorded

    async def append_to_streams(self, appends: Sequence[tuple[str, str, Event]]) -> list[RecordedEvent]:
        """One event to each of many streams in one statement (``writer.append_to_streams``)."""
        recorded = await writer.append_to_streams(self.conn, appends, metadata=self.metadata.as_dict())
        self.appended.extend(recorded)
        return recorded

    async def append_at_versions(
        self, appends: Sequence[tuple[str, str, int, Event]], *, along: writer.ReadAlong | None = None
    ) -> list[RecordedEvent]:
        """Events at versions counted on rows the caller holds locked (``writer.append_at_versions``)."""
        recorded = await writer.append_at_versions(
            self.conn, appends, metadata=self.metadata.as_dict(), along=along
        )
        self.appended.extend(recorded)
        return recorded

    def appended_by_statement(self, events: Sequence[RecordedEvent]) -> None:
        """Events that a statement of the caller's own appended in this transaction (a row's change
        and its event in one round trip), counted like those appended here."""
        self.appended.extend(events)

    async def load_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        return await reader.load_stream(self.conn, stream_id, after_version)

    async def lock(self, key: str) -> None:
        """Hold ``key``'s advisory lock (``driver.LOCK``) until the transaction ends: nothing to
        send when the unit of work began with it (``lock``)."""
        if not self.holds_lock(key):
            await (await driver.asyncpg_of(self.conn)).execute(driver.LOCK, key)

    def holds_lock(self, key: str) -> bool:
        """Whether this unit of work began holding ``key``'s advisory lock (see ``lock``)."""
        return key in self._locks and self._conn is not None

    def before_commit(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` inside the transaction just before it commits."""
        self._before_commit.append(step)

    def after_commit(self, step: Callable[[], None]) -> None:
        """Run ``step`` once the transaction has committed (never when it rolls back): for what
        counts a change that only a commit makes true, such as a metric. A step that raises is
        logged; the commit stands and the other steps run."""
        if not self._transaction:
            # Its statements commit as they run: one that fails after another committed would
            # drop the step of a change that stands.
            raise RuntimeError("a unit of work without a transaction has no commit to follow")
        self._after_commit.append(step)

    def write_at_commit(self, statement: str, *args: Any) -> None:
        """A write sent with the others like it in one statement just before the COMMIT; only
        for what ``commands.store.writes_at_commit`` allows (nothing reads it back)."""
        self._writes_at_commit.append((statement, args))

    def at_commit_mark(self) -> tuple[int, int]:
        """Where the writes at commit and the steps after it stand, for ``forget_at_commit``
        (a savepoint)."""
        return len(self._writes_at_commit), len(self._after_commit)

    def forget_at_commit(self, mark: tuple[int, int]) -> None:
        """Drop the writes at commit and the steps after it asked for since ``mark`` (their
        savepoint rolled back)."""
        writes, after = mark
        del self._writes_at_commit[writes:]
        del self._after_commit[after:]

    async def commit(self) -> None:
        if not self._transaction:
            # Each statement committed as it ran (see ``transaction``).
            if self._before_commit or self._writes_at_commit:
                raise RuntimeError("a unit of work without a transaction has nothing to run at commit")
            if _transaction_open(self.conn):
                # A statement through SQLAlchemy began a transaction, which nothing would commit.
                raise RuntimeError("a unit of work without a transaction found one open")
            await self._committed(self.conn)
            return
        for step in self._before_commit:
            await step()
        inlined = None
        if self._writes_at_commit:
            statement, args = writes_at_commit.combined(self._writes_at_commit)
            self._writes_at_commit = []
            inlined = writes_at_commit.inlined(statement, args)
            if inlined is None:
                await (await driver.asyncpg_of(self.conn)).execute(statement, *args)
        try:
            await driver.commit(self.conn, before=inlined)
        except BaseException:
            self._session_unknown = True
            raise
        await self._committed(self.conn)

    async def _committed(self, conn: AsyncConnection | None) -> None:
        self.committed = True
        # The steps before the announcement, which may wait on the database (and be cancelled).
        steps, self._after_commit = self._after_commit, []
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("a step after a commit failed; the commit stands")
        if self.appended:
            await self._announce(conn)

    async def _announce(self, conn: AsyncConnection | None) -> None:
        """Wake the ledger's readers, now that the appends are committed (never from inside the
        transaction: ``commands.store.ledger.announcer`` says why). ``conn``: the session that
        committed them, if it may be used again."""
        if self._connections.announcer is not None:
            self._connections.announcer.committed()
            return
        if conn is None:
            return  # readers poll as well
        # No announcer (cold paths, tests): this connection says it, the commit made already.
        try:
            notify = (await driver.asyncpg_of(conn)).execute
            await notify(announcer.NOTIFY, reader.LEDGER_CHANNEL, "")
        except Exception:
            # The commit stands, and readers poll too. The session, failed, is not kept.
            self._session_unknown = True
            log.warning("could not notify the ledger's readers of a commit", exc_info=True)
        except BaseException:
            self._session_unknown = True
            raise


def _transaction_open(conn: AsyncConnection) -> bool:
    """Whether a transaction is open on ``conn``, begun by SQLAlchemy or on the driver."""
    return conn.in_transaction() or not driver.session_idle(conn)
