"""The asyncpg connection under an SQLAlchemy connection, for the hottest statements.

SQLAlchemy stays for migrations, schema and most queries. The statements every
command and every projector batch runs (ledger appends and reads, checkpoints)
skip its per-call work, which costs about three times the driver call itself
here, and go straight to asyncpg, whose statement cache prepares each statement
once per connection. Same connection, same transaction.
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeAlias

from sqlalchemy.ext.asyncio import AsyncConnection

# An asyncpg connection (asyncpg ships no type information).
PgConnection: TypeAlias = Any


async def asyncpg_of(conn: AsyncConnection | PgConnection) -> PgConnection:
    """The asyncpg connection of ``conn``, inside ``conn``'s transaction if it has begun one;
    an asyncpg connection itself as it is."""
    if not isinstance(conn, AsyncConnection):
        return conn
    # Remembered with the pooled connection (SQLAlchemy clears ``info`` when it replaces the
    # DBAPI connection): getting the raw connection costs a greenlet switch, and a purchase
    # asks for it dozens of times.
    known: tuple[Any, PgConnection] | None = conn.info.get(_RAW)
    if known is None:
        fairy = await conn.get_raw_connection()
        known = conn.info[_RAW] = (fairy.dbapi_connection, fairy.driver_connection)
    adapted: Any = known[0]
    driver = known[1]
    # SQLAlchemy's adapter issues BEGIN lazily, at its own first statement: start it now, so a
    # statement sent directly is part of the transaction that SQLAlchemy later commits.
    if conn.in_transaction() and adapted._transaction is None:
        await adapted._start_transaction()
    return driver


_RAW = "commerce.asyncpg"


async def discard(conn: AsyncConnection) -> None:
    """Give back a connection whose session must not be reused (a statement failed or was
    cancelled on it: it may be dead, or anywhere in a transaction). Its pool slot reconnects."""
    # Errors from direct asyncpg calls bypass SQLAlchemy's disconnect detection, so a plain
    # close() would hand a dead connection to the next command.
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()
