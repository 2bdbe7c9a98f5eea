"""Projection leases on PostgreSQL sessions: one holder, handed on when the holder's session ends,
refused while a pause is held; a rebuild running in another process is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import httpx
from sqlalchemy import text

from commands.store.driver import PgConnection
from commands.store.ledger.reader import RecordedEvent
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_app
from projections.lease import LeaseKeeper, rebuild_key
from projections.runner import ProjectionRunner
from tests.helpers import gql
from tests.support.projections import AmountRecorded
from tests.support.stores import FAST_RUNNERS, new_tag
from tests.support.waiting import eventually


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


class InMemoryLog:
    """A read model in this process's memory (like the MongoDB stand-in): the positions it applied."""

    store = "memory"

    def __init__(self, name: str) -> None:
        self.name = name
        self.applied: list[int] = []

    async def setup(self) -> None:
        return None

    def wants(self, event: RecordedEvent) -> bool:
        return event.stream_type == "test"

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        self.applied.extend(e.position for e in events)


async def _append(container: Container, count: int) -> list[int]:
    async with UnitOfWork(container.engine, MessageMetadata(actor="test")) as uow:
        recorded = await uow.append("test", f"mem-{new_tag()}", [AmountRecorded(n) for n in range(count)])
        await uow.commit()
    return [e.position for e in recorded]


async def test_an_in_memory_model_resumes_where_it_stopped_unless_another_owner_moved_it(
    container: Container,
) -> None:
    assert container.settings.database_url
    name = f"memlog_{new_tag()}"
    here = LeaseKeeper(container.settings.database_url, "this-process")
    there = LeaseKeeper(container.settings.database_url, "other-process")
    model = InMemoryLog(name)
    runner = ProjectionRunner(model, container.engine, FAST_RUNNERS, lease=here, volatile=True)
    try:
        first = await _append(container, 3)
        runner.start()
        await eventually(lambda: model.applied[-1:] == first[-1:], message="first batch applied")
        await runner.stop()  # releases the lease; the memory keeps what was applied

        second = await _append(container, 2)
        runner.start()
        await eventually(lambda: model.applied[-1:] == second[-1:], message="second batch applied")
        mine = [p for p in model.applied if p in set(first + second)]
        assert mine == first + second, "a pause and resume in the same process must not fold again"
        await runner.stop()

        # Another process owns it for a while and applies into its own memory: ours misses that.
        elsewhere = InMemoryLog(name)
        other = ProjectionRunner(elsewhere, container.engine, FAST_RUNNERS, lease=there)
        third = await _append(container, 2)
        other.start()
        await eventually(lambda: elsewhere.applied[-1:] == third[-1:], message="other owner applied")
        await other.stop()

        runner.start()
        await eventually(lambda: model.applied[-1:] == third[-1:], message="resumed after the other owner")
        await runner.stop()
        assert [p for p in model.applied if p in set(third)] == third
        # It started over from the beginning of the ledger, so the first events came again.
        assert model.applied.count(first[0]) == 2
    finally:
        await runner.stop()
        await here.close()
        await there.close()
