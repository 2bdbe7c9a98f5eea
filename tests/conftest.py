"""Fixtures shared by every tier, and the tier markers.

Stores: when DATABASE_URL, REDIS_URL, ELASTICSEARCH_URL and MONGODB_URL are
set, the suite runs against those services; otherwise the embedded stores
start once per session, and only when a test asks for them (the unit tier
never does). Every test that asks for ``settings`` gets its own
PostgreSQL database (cloned from a migrated template), its own index prefix,
MongoDB database and Redis key prefix, so tests never see each other's data.

Tiers: each test is marked ``unit``, ``integration`` or ``e2e`` after the
folder it lives in, so ``pytest -m unit`` runs the pure tier alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from commands.payments.sandbox import InProcessServer
from commands.store.migrate import migrate
from gateway.bootstrap.container import Container, build_container
from gateway.bootstrap.settings import Settings
from gateway.bootstrap.wiring import wire
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_app
from gateway.stores.embedded import EmbeddedStores
from tests.support.checkout import SANDBOX_HOLD, Shop, checkout_settings
from tests.support.projectors import stop_projectors
from tests.support.stores import FAST_RUNNERS, TEMPLATE_DB, DatabaseClones, named_stores, with_database

TESTS_ROOT = Path(__file__).parent
TIERS = {
    "unit": "pure tests: no store, no network; run alone with -m unit",
    "integration": "against real stores (embedded PostgreSQL, Redis, search, MongoDB stand-in)",
    "e2e": "GraphQL over HTTP and websockets through the real app, and the CLI",
}
CHECKOUT_SETTINGS = "checkout_settings"


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (a CI timeout, `kill`) stops the run as Ctrl-C does: fixtures are torn down and the
    # embedded stores stopped, where the default action would leave them running.
    signal.signal(signal.SIGTERM, _interrupted)
    for tier, meaning in TIERS.items():
        config.addinivalue_line("markers", f"{tier}: {meaning}")
    config.addinivalue_line(
        "markers", f"{CHECKOUT_SETTINGS}: the test's settings get short payment timeouts and a large budget"
    )


def _interrupted(signum: int, _frame: object) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        # The controller of an xdist run: its workers (its children) stop the same way, each
        # tearing down its own stores.
        for child in _children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def _children() -> list[int]:
    path = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Runs before the -m filter (conftest hooks are called before the mark plugin's).
    for item in items:
        try:
            tier = item.path.relative_to(TESTS_ROOT).parts[0]
        except ValueError:
            continue
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


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
        with_database(settings.database_url, "postgres"), isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)"))
        await conn.execute(text(f"CREATE DATABASE {TEMPLATE_DB}"))
    template = create_async_engine(with_database(settings.database_url, TEMPLATE_DB))
    await migrate(template)
    await template.dispose()
    try:
        yield settings.with_overrides(database_url=with_database(settings.database_url, "postgres"))
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)"))
        await admin.dispose()
        if embedded is not None:
            await embedded.close()


@pytest.fixture(scope="session")
async def database_clones(base_settings: Settings) -> AsyncIterator[DatabaseClones]:
    assert base_settings.database_url is not None
    clones = DatabaseClones(base_settings.database_url)
    try:
        yield clones
    finally:
        await clones.close()


@pytest.fixture
async def settings(
    base_settings: Settings, database_clones: DatabaseClones, request: pytest.FixtureRequest
) -> AsyncIterator[Settings]:
    """Isolated stores for one test."""
    tag = await database_clones.create()
    try:
        isolated = named_stores(base_settings, tag)
        if request.node.get_closest_marker(CHECKOUT_SETTINGS) is not None:
            isolated = checkout_settings(isolated)
        yield isolated
    finally:
        await database_clones.drop(tag)


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
    await stop_projectors(container)


@pytest.fixture
async def client(running: Container) -> AsyncIterator[httpx.AsyncClient]:
    """GraphQL over HTTP through the real app (in-process ASGI transport)."""
    transport = httpx.ASGITransport(app=build_app(running))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


@pytest.fixture
def tokens(settings: Settings) -> JwtAuthenticator:
    return JwtAuthenticator(settings.jwt_secret)


@pytest.fixture
async def shop(running: Container, tokens: JwtAuthenticator) -> AsyncIterator[Shop]:
    """The checkout rig: the app under uvicorn with the sandbox provider's webhooks pointed at it."""
    server = InProcessServer(build_app(running))
    base_url = await server.start()
    provider = running.services.payments
    await provider.start(webhook_url=f"{base_url}/webhooks/payments")
    assert provider.sandbox is not None
    try:
        async with (
            httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30) as http,
            httpx.AsyncClient(base_url=provider.sandbox.base_url, trust_env=False) as sandbox,
        ):
            shop = Shop(running, http, sandbox, tokens)
            await shop.configure(timeout_hold_seconds=SANDBOX_HOLD, webhook_retry_base_seconds=0.05)
            yield shop
    finally:
        # Both servers at once: each stop waits out a uvicorn shutdown of its own. (The container's
        # close stops the provider again, which is then a no-op.)
        await asyncio.gather(server.stop(), provider.aclose())
