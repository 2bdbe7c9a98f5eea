"""Stores for one-shot CLI commands that need PostgreSQL only."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from commands.store.migrate import migrate
from gateway.bootstrap.settings import Settings
from gateway.stores.embedded import EmbeddedStores


@contextlib.asynccontextmanager
async def postgres_engine(
    settings: Settings, *, run_migrations: bool | None = None
) -> AsyncIterator[AsyncEngine]:
    """An engine on DATABASE_URL, or on the embedded server in the data directory."""
    embedded = None
    if settings.database_url is None:
        embedded, settings = await EmbeddedStores.start(
            settings.with_overrides(redis_url="unused", elasticsearch_url="unused", mongodb_url="unused")
        )
    assert settings.database_url is not None
    engine = create_async_engine(settings.database_url)
    try:
        if settings.migrate_on_start if run_migrations is None else run_migrations:
            await migrate(engine)
        yield engine
    finally:
        await engine.dispose()
        if embedded is not None:
            await embedded.close()
