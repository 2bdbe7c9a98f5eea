"""The asyncpg connection under an SQLAlchemy connection, for the hottest statements.

SQLAlchemy stays for migrations, schema and most queries. The statements every
command and every projector batch runs (ledger appends and reads, checkpoints)
skip its per-call work, which costs about three times the driver call itself
here, and go straight to asyncpg, whose statement cache prepares each statement
once per connection. Same connection, same transaction.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from typing import Any, TypeAlias

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.store import literals

# An asyncpg connection (asyncpg ships no type information).
PgConnection: TypeAlias = Any


async def asyncpg_of(conn: AsyncConnection | PgConnection) -> PgConnection:
    """The asyncpg connection of ``conn``, inside ``conn``'s transaction if it has begun one;
    an asyncpg connection itself as it is."""
    if not isinstance(conn, AsyncConnection):
        return conn
    adapted, driver = await _raw(conn)
    # SQLAlchemy's adapter issues BEGIN lazily, at its own first statement: start it now, so a
    # statement sent directly is part of the transaction that SQLAlchemy later commits.
    if adapted._transaction is None and conn.in_transaction():
        await adapted._start_transaction()
    return driver


_RAW = "commerce.asyncpg"
# The same, per SQLAlchemy connection object: a purchase asks dozens of times, and reading
# ``info`` through SQLAlchemy's proxies cost more than the rest of this module's work.
_KNOWN: weakref.WeakKeyDictionary[AsyncConnection, tuple[Any, PgConnection]] = weakref.WeakKeyDictionary()


async def _raw(conn: AsyncConnection) -> tuple[Any, PgConnection]:
    """SQLAlchemy's adapter of ``conn``'s DBAPI connection, and the asyncpg connection under it."""
    known = _KNOWN.get(conn)
    # A DBAPI connection SQLAlchemy replaced (after invalidating it) was closed first.
    if known is not None and not known[1].is_closed():
        return known
    # Remembered with the pooled connection too (SQLAlchemy clears ``info`` when it replaces the
    # DBAPI connection): getting the raw connection costs a greenlet switch.
    known = conn.info.get(_RAW)
    if known is None or known[1].is_closed():
        fairy = await conn.get_raw_connection()
        known = conn.info[_RAW] = (fairy.dbapi_connection, fairy.driver_connection)
    _KNOWN[conn] = known
    return known


class TransactionAborted(RuntimeError):
    """COMMIT found the transaction failed (a statement in it raised): PostgreSQL rolled it back."""


class _DriverTransaction:
    """A transaction begun on the driver, kept where SQLAlchemy's adapter keeps its own: statements
    SQLAlchemy runs on the connection join it (its adapter begins only when it holds none).

    asyncpg does not know of it: ``Connection.transaction()`` inside a unit of work raises
    ("manually started transaction"); a savepoint there is SQL (``begin_nested`` does that)."""

    def __init__(self, driver: PgConnection) -> None:
        self._driver = driver

    async def commit(self, *, before: str | None = None) -> None:
        """COMMIT, after ``before`` (statements without parameters) in the same simple query."""
        # PostgreSQL answers COMMIT in a failed transaction with ROLLBACK, and no error; a
        # statement of ``before`` that fails raises, and the COMMIT after it is never run.
        query = "COMMIT" if before is None else f"{before}; COMMIT"
        if await self._driver.execute(query) != "COMMIT":
            raise TransactionAborted("a statement failed in this transaction: it was rolled back")

    async def rollback(self) -> None:
        await self._driver.execute("ROLLBACK")


LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
# A unit of work's statements find their rows by key, where the generic plan is the plan a custom
# one would be; left to choose, PostgreSQL planned some of the checkout's again at every execution
# (about a tenth of its CPU in a flash sale: docs/scaling.md section 9, twentieth round). For the
# transaction only (behind a transaction-mode pooler too): reads and projectors keep its choice.
GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"


async def begin(conn: AsyncConnection, *, locks: Sequence[str] = ()) -> None:
    """Begin a transaction on the driver, without SQLAlchemy's transaction machinery (a greenlet
    switch per step); with ``locks``, holding those keys' advisory locks (``LOCK``) from the
    start, taken in the order given."""
    adapted, driver = await _raw(conn)
    if adapted._transaction is not None:
        for key in locks:
            await driver.execute(LOCK, key)
        return
    # One round trip for all: a simple query runs its statements in turn, and a BEGIN among them
    # leaves the transaction open after it. Parameters need the extended protocol, which takes
    # one statement at a time: hence the literals.
    await driver.execute(
        "; ".join(["BEGIN", GENERIC_PLANS, *(LOCK.replace("$1", literals.text(key)) for key in locks)])
    )
    adapted._transaction = _DriverTransaction(driver)


def closed(conn: AsyncConnection) -> bool:
    """Whether the driver knows ``conn``'s session is gone (no I/O)."""
    known = _known(conn)
    return known is not None and bool(known[1].is_closed())


async def commit(conn: AsyncConnection, *, before: str | None = None) -> None:
    """Commit what ``begin`` began. SQLAlchemy's own bookkeeping of the transaction, if one of its
    statements opened it, is closed without I/O (its adapter holds no transaction any more).
    ``before``: statements without parameters run first, in the COMMIT's round trip when the
    transaction is one ``begin`` began (else on their own, just before it)."""
    if before is not None:
        adapted, _ = await _raw(conn)
        if not isinstance(adapted._transaction, _DriverTransaction):
            await (await asyncpg_of(conn)).execute(before)
            before = None
    await _end(conn, commit=True, before=before)


async def rollback(conn: AsyncConnection) -> None:
    """Roll back what ``begin`` began (and SQLAlchemy's bookkeeping of it, without I/O)."""
    await _end(conn, commit=False)


async def _end(conn: AsyncConnection, *, commit: bool, before: str | None = None) -> None:
    adapted, _ = await _raw(conn)
    transaction, adapted._transaction = adapted._transaction, None
    if isinstance(transaction, _DriverTransaction) and commit:
        await transaction.commit(before=before)
    elif transaction is not None:
        await (transaction.commit() if commit else transaction.rollback())
    bookkept = conn.sync_connection
    if bookkept is not None and bookkept.in_transaction():
        if commit:
            bookkept.commit()
        else:
            bookkept.rollback()


def session_idle(conn: AsyncConnection) -> bool:
    """Whether ``conn``'s session is open and outside any transaction (no I/O: the driver's own
    record of the last status PostgreSQL reported). Only such a session is kept for the next
    unit of work: a plain BEGIN inside an open transaction would only warn and join it."""
    known = _known(conn)
    if known is None:
        return True
    return not known[1].is_closed() and not known[1].is_in_transaction()


def _known(conn: AsyncConnection) -> tuple[Any, PgConnection] | None:
    """The adapter and driver connection ``_raw`` remembered for ``conn``, without I/O."""
    known: tuple[Any, PgConnection] | None = _KNOWN.get(conn) or conn.info.get(_RAW)
    return known


async def discard(conn: AsyncConnection) -> None:
    """Give back a connection whose session must not be reused (a statement failed or was
    cancelled on it: it may be dead, or anywhere in a transaction). Its pool slot reconnects."""
    # Errors from direct asyncpg calls bypass SQLAlchemy's disconnect detection, so a plain
    # close() would hand a dead connection to the next command.
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


def replace_closed_on_checkout(engine: AsyncEngine) -> None:
    """Make ``engine``'s pool replace, as it hands one out, a connection whose session the driver
    already knows is gone (a database restart, an idle session terminated), without a round trip.

    SQLAlchemy notices a dead connection only when one of its own statements fails on it; the
    statements sent here straight to asyncpg fail with asyncpg's error, which it never sees. So
    after a restart every pooled connection would fail one caller before it was replaced."""
    event.listen(engine.sync_engine, "checkout", _refuse_closed)


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    driver_connection = getattr(dbapi_connection, "driver_connection", None)
    if driver_connection is not None and driver_connection.is_closed():
        # The pool answers this by reconnecting the slot and handing out the new connection.
        raise exc.DisconnectionError("the pooled connection's session is gone")
