"""Alembic environment.

``commands.store.migrate`` passes an open (sync-facade) connection in
``config.attributes["connection"]``; the plain ``alembic`` CLI falls back to
DATABASE_URL over an async engine.

``target_metadata`` is every package's table definitions, so autogenerate
(``alembic check``, ``alembic revision --autogenerate``) compares the whole schema.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from commands.store import tables as write_side
from gateway.edge import tables as edge
from projections import tables as read_models

config = context.config
target_metadata = [write_side.metadata, edge.metadata, read_models.metadata]


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")

_connection = config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    asyncio.run(_run_from_url(os.environ["DATABASE_URL"]))
