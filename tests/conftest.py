"""Shared fixtures.

Stores: when DATABASE_URL, REDIS_URL, ELASTICSEARCH_URL and MONGODB_URL are
set, the suite runs against those services; otherwise the embedded stores
start once per session. Every test that asks for ``settings`` gets its own
PostgreSQL database (cloned from a migrated template), its own index prefix,
MongoDB database and Redis key prefix, so tests never see each other's data.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from commands.store.migrate import migrate
from gateway.bootstrap.container import Container, build_container
from gateway.bootstrap.settings import Settings
from gateway.bootstrap.wiring import wire
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_app
from gateway.stores.embedded import EmbeddedStores
from projections.runner import RunnerConfig

TEMPLATE_DB = "commerce_test_template"
FAST_RUNNERS = RunnerConfig(batch_size=200, poll_interval=0.5, backoff_initial=0.02, backoff_max=0.2)
_counter = itertools.count(1)


@pytest.fixture(scope="session")
async def base_settings(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    settings = Settings.from_env().with_overrides(
        data_dir=tmp_path_factory.mktemp("data"), log_level="WARNING"
    )
    embedded = None
    if None in (settings.database_url, settings.redis_url, settings.elasticsearch_url, settings.mongodb_url):
        embedded, settings = await EmbeddedStores.start(settings)
        if embedded.postgres is not None:
            # Test data is disposable: trade durability for speed on the embedded server.
            embedded.postgres.psql(
                "ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off; "
                "ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();"
            )
    assert settings.database_url is not None
    admin = create_async_engine(
        _with_database(settings.database_url, "postgres"), isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)"))
        await conn.execute(text(f"CREATE DATABASE {TEMPLATE_DB}"))
    template = create_async_engine(_with_database(settings.database_url, TEMPLATE_DB))
    await migrate(template)
    await template.dispose()
    try:
        yield settings.with_overrides(database_url=_with_database(settings.database_url, "postgres"))
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)"))
        await admin.dispose()
        if embedded is not None:
            await embedded.close()


def _with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture
async def settings(base_settings: Settings) -> AsyncIterator[Settings]:
    """Isolated stores for one test."""
    n = next(_counter)
    tag = f"t{os.getpid()}_{n}_{uuid.uuid4().hex[:6]}"
    assert base_settings.database_url is not None
    admin = create_async_engine(base_settings.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {tag} TEMPLATE {TEMPLATE_DB}"))
    try:
        yield base_settings.with_overrides(
            database_url=_with_database(base_settings.database_url, tag),
            index_prefix=f"{tag}_",
            mongodb_database=tag,
            redis_prefix=f"{tag}:",
            migrate_on_start=False,
        )
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {tag} WITH (FORCE)"))
        await admin.dispose()


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    """A wired container; projectors are not started (see ``running``)."""
    built = await build_container(settings)
    wire(built, FAST_RUNNERS)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def running(container: Container) -> AsyncIterator[Container]:
    """The container with every projector running in the background."""
    await container.start_projectors()
    yield container
    await container.stop_projectors()


@pytest.fixture
async def client(running: Container) -> AsyncIterator[httpx.AsyncClient]:
    """GraphQL over HTTP through the real app (in-process ASGI transport)."""
    transport = httpx.ASGITransport(app=build_app(running))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


@pytest.fixture
def tokens(settings: Settings) -> JwtAuthenticator:
    return JwtAuthenticator(settings.jwt_secret)
