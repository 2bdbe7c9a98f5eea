"""Per-test store isolation: a PostgreSQL database cloned from the migrated template, and the
index, MongoDB database and Redis key prefixes named after it."""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.bootstrap.settings import Settings
from projections.runner import RunnerConfig

# One template per pytest-xdist worker: with DATABASE_URL set, the workers share one server.
TEMPLATE_DB = f"commerce_test_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
FAST_RUNNERS = RunnerConfig(batch_size=200, poll_interval=0.5, backoff_initial=0.02, backoff_max=0.2)
_counter = itertools.count(1)


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def new_tag(prefix: str = "t") -> str:
    """A name no other test (or test process) uses."""
    return f"{prefix}{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"


def named_stores(base_settings: Settings, tag: str) -> Settings:
    """``base_settings`` pointed at the database ``tag`` and at index, MongoDB and Redis names of it."""
    assert base_settings.database_url is not None
    return base_settings.with_overrides(
        database_url=with_database(base_settings.database_url, tag),
        index_prefix=f"{tag}_",
        mongodb_database=tag,
        redis_prefix=f"{tag}:",
        migrate_on_start=False,
    )


@contextlib.asynccontextmanager
async def isolated_settings(base_settings: Settings, tag: str) -> AsyncIterator[Settings]:
    """``base_settings`` pointed at stores named ``tag``; the database is dropped on exit."""
    assert base_settings.database_url is not None
    admin = create_async_engine(base_settings.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {tag} TEMPLATE {TEMPLATE_DB}"))
    try:
        yield named_stores(base_settings, tag)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {tag} WITH (FORCE)"))
        await admin.dispose()


class DatabaseClones:
    """Clones of the template, one per test, made and dropped through one admin engine (a new
    engine per test would pay for its first connection's set-up round trips each time).

    Not cloned ahead in the background: CREATE DATABASE holds a transaction id while it copies,
    and the ledger's gap-safe reads in every database of the server hold back behind it.
    """

    def __init__(self, admin_url: str) -> None:
        self._admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")

    async def create(self) -> str:
        """The name of a fresh clone of the template, which is the caller's to drop."""
        tag = new_tag()
        async with self._admin.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE {tag} TEMPLATE {TEMPLATE_DB}"))
        return tag

    async def drop(self, tag: str) -> None:
        async with self._admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {tag} WITH (FORCE)"))

    async def close(self) -> None:
        await self._admin.dispose()
