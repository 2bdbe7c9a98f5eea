"""The ledger announcer: readers are woken after commits, by notifications sent outside them."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from commands.events.base import Event
from commands.store.connections import CommandConnections
from commands.store.ledger.announcer import CONNECT_SECONDS, TRIES, LedgerAnnouncer
from commands.store.ledger.reader import LEDGER_CHANNEL
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from gateway.realtime.notifications import asyncpg_dsn
from tests.support.waiting import eventually

META = MessageMetadata(request_id="req-announce", actor="admin:alice")


class ParcelCounted(Event, frozen=True):
    stream_type = "parcel"
    count: int


def _dsn(container: Container) -> str:
    assert container.settings.database_url is not None
    return asyncpg_dsn(container.settings.database_url)


async def _listening(container: Container) -> tuple[asyncpg.Connection, asyncio.Queue[str]]:
    listener = await asyncpg.connect(_dsn(container))
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(LEDGER_CHANNEL, lambda *args: received.put_nowait(args[3]))
    return listener, received


async def _until_idle(announcer: LedgerAnnouncer) -> None:
    await eventually(lambda: not announcer.busy, message="the announcer sent what was due")


async def test_commits_while_a_notification_is_on_its_way_get_one_more(container: Container) -> None:
    listener, received = await _listening(container)
    woken: list[None] = []
    announcer = LedgerAnnouncer(_dsn(container), local=lambda: woken.append(None))
    try:
        for _ in range(3):
            announcer.committed()  # before the first notification is sent: it covers them
        await asyncio.sleep(0)  # the notification is on its way (waiting for the database)
        assert announcer.busy
        for _ in range(7):
            announcer.committed()
        await _until_idle(announcer)
        payloads = [await asyncio.wait_for(received.get(), 5) for _ in range(2)]
        await asyncio.sleep(0.2)
        # The first three commits' notification, and one for the seven while it was on its way.
        assert received.empty()
        assert announcer.sent == 2
        assert payloads == [announcer.payload] * 2 and announcer.own(payloads[0])
        assert len(woken) == 10, "this process's readers are woken at every commit"
        announcer.committed()
    finally:
        await announcer.close()
        await listener.close()
    assert announcer.sent == 3, "close sends what is due first"


async def test_a_reader_woken_by_the_last_notification_sees_every_commit(container: Container) -> None:
    """Many units of work commit at once; a reader that reads the ledger's head each time it is
    notified (as another process's projectors do) must end having seen the last commit."""
    listener, _ = await _listening(container)
    heads: list[int] = []
    reads: set[asyncio.Task[None]] = set()
    reader = await container.engine.connect()
    lock = asyncio.Lock()

    async def read_head() -> None:
        async with lock:
            head = await (await reader.get_raw_connection()).driver_connection.fetchval(
                "SELECT max(position) FROM ledger_events"
            )
        heads.append(int(head))

    def woken(*_args: object) -> None:
        task = asyncio.create_task(read_head())
        reads.add(task)
        task.add_done_callback(reads.discard)

    await listener.add_listener(LEDGER_CHANNEL, woken)
    announcer = LedgerAnnouncer(_dsn(container))
    connections = CommandConnections(container.engine, keep=6, announcer=announcer)

    async def count(n: int) -> int:
        async with UnitOfWork(connections, META) as uow:
            recorded = await uow.append("parcel", f"parcel-{n}", [ParcelCounted(n)])
            await uow.commit()
        return recorded[-1].position

    try:
        positions = await asyncio.gather(*(count(n) for n in range(60)))
        await _until_idle(announcer)
        await eventually(
            lambda: not reads and bool(heads) and max(heads) >= max(positions),
            message="a reader woken after the last commit read it",
        )
        assert 1 <= announcer.sent <= len(positions)
    finally:
        await connections.close()
        await listener.close()
        await reader.close()


async def test_a_notification_that_cannot_be_sent_is_given_up_and_tried_at_the_next_commit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    woken: list[None] = []
    announcer = LedgerAnnouncer("postgresql://nobody@127.0.0.1:9/nothing", local=lambda: woken.append(None))
    try:
        with caplog.at_level(logging.WARNING, logger="commands.store.ledger.announcer"):
            announcer.committed()
            # Each try is bounded by the connect timeout, should the port drop what it is sent.
            await eventually(lambda: not announcer.busy, timeout=TRIES * CONNECT_SECONDS + 5)
        assert announcer.sent == 0
        assert any("given up" in record.getMessage() for record in caplog.records)
        assert woken == [None], "this process's readers are woken all the same"
        announcer.committed()
        assert announcer.busy, "the next commit tries again"
    finally:
        await announcer.close()
    assert not announcer.busy
