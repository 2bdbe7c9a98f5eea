"""Per-test store isolation: a PostgreSQL database cloned from the migrated template, and the
index, MongoDB database and Redis key prefixes named after it."""

from __future__ import annotations

import asyncio
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

TEMPLATE_DB = "commerce_test_template"
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


class SpareDatabases:
    """Clones of the template made one test ahead.

    Taking a database starts the clone the next test will take, so a test's setup finds its
    database ready instead of waiting for CREATE DATABASE (the clone runs in the PostgreSQL
    server while the previous test runs).
    """

    def __init__(self, admin_url: str) -> None:
        self._admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._next: asyncio.Task[str] | None = None

    async def take(self) -> str:
        """The name of a fresh clone of the template, which is now the caller's to drop."""
        pending, self._next = self._next, None
        tag = await pending if pending is not None else await self._clone(new_tag())
        self._next = asyncio.create_task(self._clone(new_tag()), name="spare-database")
        return tag

    async def drop(self, tag: str) -> None:
        async with self._admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {tag} WITH (FORCE)"))

    async def close(self) -> None:
        pending, self._next = self._next, None
        try:
            if pending is not None:
                with contextlib.suppress(Exception):
                    await self.drop(await pending)
        finally:
            await self._admin.dispose()

    async def _clone(self, tag: str) -> str:
        async with self._admin.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE {tag} TEMPLATE {TEMPLATE_DB}"))
        return tag
