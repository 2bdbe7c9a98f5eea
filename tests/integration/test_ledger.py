"""The ledger: appends with optimistic concurrency, stream loads, metadata, NOTIFY."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from commands.errors import VersionConflict
from commands.events.base import Event
from commands.store.ledger.reader import LEDGER_CHANNEL, load_stream, stream_version
from commands.store.ledger.writer import ReadAlong, StreamConflict
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from gateway.realtime.notifications import asyncpg_dsn


class ThingHappened(Event, frozen=True):
    stream_type = "thing"
    amount: int


META = MessageMetadata(request_id="req-1", correlation_id="corr-1", actor="admin:alice")


async def test_append_assigns_versions_and_copies_metadata(container: Container) -> None:
    async with UnitOfWork(container.engine, META) as uow:
        first = await uow.append("thing", "thing-1", [ThingHappened(1), ThingHappened(2)], expected_version=0)
        await uow.commit()
    assert [e.stream_version for e in first] == [1, 2]
    assert first[0].position < first[1].position
    async with container.engine.connect() as conn:
        loaded = await load_stream(conn, "thing-1")
    assert [e.decode() for e in loaded] == [ThingHappened(1), ThingHappened(2)]
    assert loaded[0].metadata == {"request_id": "req-1", "correlation_id": "corr-1", "actor": "admin:alice"}
    assert loaded[0].tx_id == loaded[1].tx_id


async def test_stale_expected_version_is_a_conflict_and_appends_nothing(container: Container) -> None:
    async with UnitOfWork(container.engine, META) as uow:
        await uow.append("thing", "thing-2", [ThingHappened(1)], expected_version=0)
        await uow.commit()
    with pytest.raises(VersionConflict):
        async with UnitOfWork(container.engine, META) as uow:
            await uow.append("thing", "thing-2", [ThingHappened(2)], expected_version=0)
    async with container.engine.connect() as conn:
        assert await stream_version(conn, "thing-2") == 1


async def test_concurrent_appends_to_one_version_one_wins(container: Container) -> None:
    barrier = asyncio.Barrier(8)

    async def writer(i: int) -> str:
        try:
            async with UnitOfWork(container.engine, META) as uow:
                await barrier.wait()
                await uow.append("thing", "thing-race", [ThingHappened(i)], expected_version=None)
                await uow.commit()
                return "ok"
        except VersionConflict:
            return "conflict"

    outcomes = await asyncio.gather(*(writer(i) for i in range(8)))
    async with container.engine.connect() as conn:
        stream = await load_stream(conn, "thing-race")
    assert [e.stream_version for e in stream] == list(range(1, outcomes.count("ok") + 1))
    assert outcomes.count("ok") >= 1
    assert outcomes.count("ok") + outcomes.count("conflict") == 8


def _marker_read(seen: list[object], wanted: str) -> ReadAlong:
    """A read along the append of one row of ``pg_settings`` (the named setting), which the check
    records and refuses unless it found it."""

    def check(row: Any) -> None:
        seen.append(row["name"])
        if row["name"] is None:
            raise StreamConflict("not found")

    return ReadAlong(lambda first: f"SELECT name FROM pg_settings WHERE name = ${first}", (wanted,), check)


async def test_a_read_along_an_append_is_checked_and_a_refusal_appends_nothing(container: Container) -> None:
    seen: list[object] = []
    async with UnitOfWork(container.engine, META) as uow:
        appended = await uow.append_at_versions(
            [("thing", "thing-along", 1, ThingHappened(1)), ("thing", "thing-along", 2, ThingHappened(2))],
            along=_marker_read(seen, "work_mem"),
        )
        await uow.commit()
    assert [e.stream_version for e in appended] == [1, 2] and seen == ["work_mem"]
    with pytest.raises(StreamConflict):
        async with UnitOfWork(container.engine, META) as uow:
            await uow.append_at_versions(
                [("thing", "thing-along", 3, ThingHappened(3))], along=_marker_read(seen, "no_such_setting")
            )
            await uow.commit()
    assert seen == ["work_mem", None], "the row of a read that found nothing is NULLs"
    async with container.engine.connect() as conn:
        assert await stream_version(conn, "thing-along") == 2


async def test_rolled_back_unit_of_work_leaves_no_event(container: Container) -> None:
    with pytest.raises(RuntimeError):
        async with UnitOfWork(container.engine, META) as uow:
            await uow.append("thing", "thing-3", [ThingHappened(1)])
            raise RuntimeError("handler failed after appending")
    async with container.engine.connect() as conn:
        assert await load_stream(conn, "thing-3") == []


async def test_ledger_is_append_only(container: Container) -> None:
    async with UnitOfWork(container.engine, META) as uow:
        await uow.append("thing", "thing-4", [ThingHappened(1)])
        await uow.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        async with container.engine.begin() as conn:
            await conn.execute(text("UPDATE ledger_events SET data = '{}'::jsonb"))
    with pytest.raises(DBAPIError, match="append-only"):
        async with container.engine.begin() as conn:
            await conn.execute(text("DELETE FROM ledger_events"))


async def test_a_unit_of_work_notifies_after_its_commit_once(container: Container) -> None:
    """Without an announcer (a unit of work on an engine), its own connection notifies once the
    appends are committed: nothing before, one notification for two appends, none on rollback."""
    assert container.settings.database_url is not None
    listener = await asyncpg.connect(asyncpg_dsn(container.settings.database_url))
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(LEDGER_CHANNEL, lambda *args: received.put_nowait(args[3]))
    try:
        async with UnitOfWork(container.engine, META) as uow:
            await uow.append("thing", "thing-5", [ThingHappened(1)])
            await uow.append("thing", "thing-6", [ThingHappened(2), ThingHappened(3)])
            await asyncio.sleep(0.1)  # a window in which a NOTIFY sent before commit would arrive
            assert received.empty(), "NOTIFY must not be delivered before commit"
            await uow.commit()
        await asyncio.wait_for(received.get(), 5)
        # Two appends, one transaction: one notification.
        await asyncio.sleep(0.2)
        assert received.empty()
        async with UnitOfWork(container.engine, META) as uow:
            await uow.append("thing", "thing-7", [ThingHappened(4)])
        await asyncio.sleep(0.2)
        assert received.empty(), "a rolled-back append announces nothing"
    finally:
        await listener.close()
