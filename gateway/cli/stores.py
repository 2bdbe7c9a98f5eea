"""Stores for one-shot CLI commands."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from commands.store.driver import replace_closed_on_checkout
from commands.store.migrate import migrate
from gateway.bootstrap.settings import Settings
from gateway.cli.running import borrowed, borrowed_postgres, running_gateway
from gateway.stores.embedded import EmbeddedStores

if TYPE_CHECKING:
    from gateway.bootstrap.container import Container


@contextlib.asynccontextmanager
async def postgres_engine(
    settings: Settings, *, run_migrations: bool | None = None
) -> AsyncIterator[AsyncEngine]:
    """An engine on DATABASE_URL, on the running gateway's embedded server, or on one started here."""
    embedded = None
    if settings.database_url is None:
        gateway = running_gateway(settings)
        if gateway is not None:
            settings = borrowed_postgres(settings, gateway)
        else:
            embedded, settings = await EmbeddedStores.start(
                settings.with_overrides(redis_url="unused", elasticsearch_url="unused", mongodb_url="unused")
            )
    assert settings.database_url is not None
    engine = create_async_engine(settings.database_url)
    replace_closed_on_checkout(engine)
    try:
        if settings.migrate_on_start if run_migrations is None else run_migrations:
            await migrate(engine)
        yield engine
    finally:
        await engine.dispose()
        if embedded is not None:
            await embedded.close()


@contextlib.asynccontextmanager
async def wired_container(settings: Settings) -> AsyncIterator[Container]:
    """A wired container; beside a running gateway, on its servers (its projectors stay its own)."""
    from gateway.bootstrap.container import build_container
    from gateway.bootstrap.wiring import wire

    gateway = running_gateway(settings)
    if gateway is not None:
        settings = borrowed(settings, gateway)
    container = await build_container(settings)
    try:
        wire(container)
        yield container
    finally:
        await container.close()
