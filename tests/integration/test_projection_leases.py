"""Projection leases on PostgreSQL sessions: one holder, handed on when the holder's session ends,
refused while a pause is held; a rebuild running in another process is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import text

from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_app
from projections.lease import LeaseKeeper, rebuild_key
from tests.helpers import gql


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def _not(result: Awaitable[bool]) -> bool:
    return not await result


REBUILD = """mutation($name: String!) {
  projectionRebuild(name: $name) { projection { state } userErrors { message } } }"""


async def test_one_holder_handed_on_when_its_session_ends(container: Container) -> None:
    assert container.settings.database_url
    first = LeaseKeeper(container.settings.database_url, "first-holder")
    second = LeaseKeeper(container.settings.database_url, "second-holder")
    try:
        assert await first.acquire("orders")
        assert not await second.acquire("orders")
        assert await second.owner("orders") == "first-holder"
        async with container.engine.connect() as conn:  # the holder dies: its session ends
            await conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :a"),
                {"a": "first-holder"},
            )
        await _until(lambda: second.acquire("orders"))
        assert not await first.confirm("orders"), "a lost session must not count as holding"
        assert await first.owner("orders") == "second-holder"
    finally:
        await first.close()
        await second.close()


async def test_no_lease_is_taken_while_a_pause_holds_it(container: Container) -> None:
    assert container.settings.database_url
    owner = LeaseKeeper(container.settings.database_url, "owner")
    pauser = LeaseKeeper(container.settings.database_url, "pauser")
    try:
        assert await owner.acquire("timeline")
        pausing = asyncio.create_task(pauser.hold_paused("timeline", timeout=10))
        await _until(lambda: _not(owner.confirm("timeline")))  # the owner's periodic check
        await pausing
        assert await pauser.owner("timeline") == "pauser"
        assert not await owner.acquire("timeline")
        await pauser.close()
        assert await owner.acquire("timeline")
    finally:
        await owner.close()
        await pauser.close()


async def test_a_rebuild_running_in_another_process_is_refused(
    container: Container, tokens: JwtAuthenticator
) -> None:
    assert container.settings.database_url
    elsewhere = LeaseKeeper(container.settings.database_url, "other-gateway rebuild")
    transport = httpx.ASGITransport(app=build_app(container))
    try:
        assert await elsewhere.try_exclusive(rebuild_key("orders"))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            body = await gql(client, REBUILD, {"name": "orders"}, token=tokens.mint("a", ["admin"]))
        (error,) = body["data"]["projectionRebuild"]["userErrors"]
        assert "already running in another process" in error["message"]
        assert container.rebuilder.progress("orders") is None
    finally:
        await elsewhere.close()
