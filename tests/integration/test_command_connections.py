"""Units of work on kept connections: one transaction for driver and SQLAlchemy statements,
kept between units of work, never kept broken, and never more than asked for."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import Context

import pytest
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from commands.bus import CommandBus
from commands.events.base import Event
from commands.handlers import cart as cart_handlers
from commands.messages.cart import CartActor, CreateCart
from commands.store import connections as connections_module
from commands.store.connections import URGENT_IN_A_ROW, CommandConnections
from commands.store.driver import TransactionAborted, asyncpg_of
from commands.store.ledger.announcer import LedgerAnnouncer
from commands.store.ledger.reader import stream_version
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from gateway.realtime.notifications import asyncpg_dsn
from tests.support.waiting import eventually

META = MessageMetadata(actor="admin:test")


class ThingCounted(Event, frozen=True):
    stream_type = "thing"
    count: int


async def _cart_rows(container: Container, cart_id: str) -> int:
    async with container.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM customer_carts WHERE cart_id = :c"), {"c": cart_id}
                )
            ).scalar_one()
        )


async def _version(container: Container, stream: str) -> int:
    async with container.engine.connect() as conn:
        return await stream_version(conn, stream)


async def _write_both(uow: UnitOfWork, stream: str, cart_id: str) -> None:
    """An append on the driver and a row written through SQLAlchemy, on the unit's connection."""
    await uow.append("thing", stream, [ThingCounted(1)])
    await uow.conn.execute(
        text("INSERT INTO customer_carts (cart_id, customer_id, status) VALUES (:c, 'cust', 'ACTIVE')"),
        {"c": cart_id},
    )


async def test_a_kept_connection_is_reused_and_sqlalchemy_statements_join_its_transaction(
    container: Container,
) -> None:
    commits: list[None] = []
    assert container.settings.database_url is not None
    announcer = LedgerAnnouncer(
        asyncpg_dsn(container.settings.database_url), local=lambda: commits.append(None)
    )
    connections = CommandConnections(container.engine, keep=2, announcer=announcer)
    stream, cart = f"thing-{uuid.uuid4()}", str(uuid.uuid4())
    try:
        async with UnitOfWork(connections, META) as uow:
            first = uow.conn
            await _write_both(uow, stream, cart)
            driver_xact = await (await asyncpg_of(uow.conn)).fetchval("SELECT pg_current_xact_id()::text")
            orm_xact = (await uow.conn.execute(text("SELECT pg_current_xact_id()::text"))).scalar_one()
            assert driver_xact == orm_xact
            await uow.commit()
        assert await _version(container, stream) == 1 and await _cart_rows(container, cart) == 1
        assert len(commits) == 1 and connections.kept == 1
        async with UnitOfWork(connections, META) as uow:
            assert uow.conn is first, "the kept connection is handed out again"
            await uow.conn.execute(text("SELECT 1"))
            await uow.commit()
        assert len(commits) == 1, "a commit that appended nothing moves no ledger"
    finally:
        await connections.close()
    assert container.engine.pool.checkedout() == 0


@pytest.fixture
async def connections(container: Container) -> AsyncIterator[CommandConnections]:
    """Keeping one connection; closed after the test, and then nothing is left checked out."""
    kept = CommandConnections(container.engine, keep=1)
    try:
        yield kept
    finally:
        await kept.close()
    assert container.engine.pool.checkedout() == 0


async def test_a_unit_of_works_transaction_plans_generically_and_only_it(
    container: Container, connections: CommandConnections
) -> None:
    async with container.engine.connect() as pooled:
        pool_default = await (await asyncpg_of(pooled)).fetchval("SHOW plan_cache_mode")
    assert pool_default != "force_generic_plan"
    async with UnitOfWork(connections, META) as uow:
        raw = await asyncpg_of(uow.conn)
        assert await raw.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        await uow.commit()
    # After the transaction the session plans as PostgreSQL chooses again, kept or not.
    assert await raw.fetchval("SHOW plan_cache_mode") == pool_default


async def test_a_failure_rolls_back_both_kinds_of_statement_and_keeps_the_connection(
    container: Container,
    connections: CommandConnections,
) -> None:
    stream, cart = f"thing-{uuid.uuid4()}", str(uuid.uuid4())
    with pytest.raises(LookupError):
        async with UnitOfWork(connections, META) as uow:
            await _write_both(uow, stream, cart)
            raise LookupError("refused")
    assert await _version(container, stream) == 0 and await _cart_rows(container, cart) == 0
    assert connections.kept == 1
    async with UnitOfWork(connections, META) as uow:
        await _write_both(uow, stream, cart)
        await uow.commit()
    assert await _version(container, stream) == 1 and await _cart_rows(container, cart) == 1


async def test_a_failed_sqlalchemy_statement_makes_commit_refuse(
    container: Container, connections: CommandConnections
) -> None:
    stream = f"thing-{uuid.uuid4()}"
    async with UnitOfWork(connections, META) as uow:
        await uow.append("thing", stream, [ThingCounted(1)])
        with pytest.raises(DBAPIError):
            await uow.conn.execute(text("SELECT 1 / 0"))
        with pytest.raises(TransactionAborted):
            await uow.commit()
    assert await _version(container, stream) == 0
    async with UnitOfWork(connections, META) as uow:  # the connection is clean again
        await uow.append("thing", stream, [ThingCounted(2)])
        await uow.commit()
    assert await _version(container, stream) == 1


@pytest.mark.parametrize("keep", [1, 2])
async def test_beyond_the_kept_number_units_of_work_wait_and_are_served_in_turn(
    container: Container, keep: int
) -> None:
    """Six units of work on one or two connections: never more open at once, none borrowed
    from the pool, all committed; on one connection, each served in the order it asked."""
    connections = CommandConnections(container.engine, keep=keep)
    streams = [f"thing-{uuid.uuid4()}" for _ in range(6)]
    served: list[int] = []
    most_open = 0
    open_now = 0

    async def one(i: int) -> None:
        nonlocal most_open, open_now
        async with UnitOfWork(connections, META) as uow:
            served.append(i)
            open_now += 1
            most_open = max(most_open, open_now)
            await uow.append("thing", streams[i], [ThingCounted(1)])
            await asyncio.sleep(0.02)
            open_now -= 1
            await uow.commit()

    try:
        tasks = []
        for i in range(len(streams)):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(0)  # asked in this order
        await asyncio.gather(*tasks)
        assert most_open == keep and connections.kept == keep
        assert container.engine.pool.checkedout() == keep
        if keep == 1:
            assert served == list(range(len(streams)))
        stats = connections.stats()
        assert (stats.taken, stats.waited, stats.waiting) == (len(streams), len(streams) - keep, 0)
        assert stats.seconds_waited > 0.02 and stats.idle == keep
        assert [await _version(container, s) for s in streams] == [1] * len(streams)
    finally:
        await connections.close()
    assert container.engine.pool.checkedout() == 0


class _OneHeld:
    """A task holding the one kept connection until ``finish``; units of work asked for meanwhile
    record, in ``served``, the order they got it in."""

    def __init__(self, connections: CommandConnections) -> None:
        self.connections = connections
        self.served: list[str] = []
        self._in = asyncio.Event()
        self._release = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._hold()))
        await self._in.wait()

    def ask(self, name: str, *, urgent: bool = False) -> None:
        self._tasks.append(asyncio.create_task(self._served(name, urgent)))

    async def finish(self, *, then_ask: str | None = None) -> None:
        self._release.set()
        if then_ask is not None:  # asks right as the holder gives its connection back
            self.ask(then_ask)
        await asyncio.gather(*self._tasks)

    async def _hold(self) -> None:
        async with UnitOfWork(self.connections, META) as uow:
            self._in.set()
            await self._release.wait()
            await uow.commit()

    async def _served(self, name: str, urgent: bool) -> None:
        async with UnitOfWork(self.connections, META, urgent=urgent) as uow:
            self.served.append(name)
            await uow.commit()


async def test_a_connection_given_back_goes_to_the_longest_waiter_not_to_a_newcomer(
    container: Container, connections: CommandConnections
) -> None:
    held = _OneHeld(connections)
    await held.start()
    held.ask("waiter")
    await eventually(lambda: connections.waiting == 1)
    assert connections.waiting == 1
    await held.finish(then_ask="newcomer")
    assert held.served == ["waiter", "newcomer"]
    assert connections.kept == 1 and connections.waiting == 0


@pytest.mark.parametrize(
    ("asked", "served"),
    [
        ([("new 0", False), ("new 1", False), ("settlement", True)], ["settlement", "new 0", "new 1"]),
        (
            [("new", False), *((f"urgent {i}", True) for i in range(6))],
            [*(f"urgent {i}" for i in range(URGENT_IN_A_ROW)), "new", "urgent 4", "urgent 5"],
        ),
    ],
    ids=["urgent first", "never starving the others"],
)
async def test_urgent_units_of_work_go_first_but_never_starve_the_others(
    container: Container,
    connections: CommandConnections,
    asked: list[tuple[str, bool]],
    served: list[str],
) -> None:
    held = _OneHeld(connections)
    await held.start()
    for name, urgent in asked:
        held.ask(name, urgent=urgent)
        await asyncio.sleep(0.01)  # asked in this order
    assert connections.waiting == len(asked)
    await held.finish()
    assert held.served == served


async def test_a_slot_freed_by_a_broken_connection_goes_to_the_waiter_not_to_a_newcomer(
    container: Container, connections: CommandConnections
) -> None:
    served: list[str] = []

    async def later(name: str) -> None:
        async with UnitOfWork(connections, META) as uow:
            served.append(name)
            await uow.commit()

    conn = await connections.take()
    waiter = asyncio.create_task(later("waiter"), context=Context())
    # Waiting before the slot is freed (a fixed 50 ms was not always enough on a loaded run).
    await eventually(lambda: connections.waiting == 1)
    await connections.give_back(conn, broken=True)
    newcomer = asyncio.create_task(later("newcomer"), context=Context())
    await asyncio.gather(waiter, newcomer)
    assert served == ["waiter", "newcomer"]
    assert connections.kept == 1 and connections.stats().waited == 2


async def test_a_fresh_take_with_every_kept_connection_idle_makes_room_instead_of_waiting(
    container: Container,
) -> None:
    connections = CommandConnections(container.engine, keep=2, wait_seconds=1.0)
    try:
        first, second = (
            await connections.take(),
            await asyncio.create_task(connections.take(), context=Context()),
        )
        await connections.give_back(first)
        await connections.give_back(second)
        assert connections.stats().idle == 2
        fresh = await connections.take(fresh=True)
        assert fresh is not first and fresh is not second
        assert connections.kept == 2 and connections.stats().idle == 1
        await connections.give_back(fresh)
    finally:
        await connections.close()
    assert container.engine.pool.checkedout() == 0


async def test_a_connection_handed_to_a_waiter_cancelled_after_close_is_closed_not_kept(
    container: Container, connections: CommandConnections
) -> None:
    conn = await connections.take()
    waiter = asyncio.create_task(connections.take(), context=Context())
    await eventually(lambda: connections.waiting == 1)
    await connections.give_back(conn)  # handed to the waiter, which has not run yet
    await connections.close()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    for _ in range(50):
        if container.engine.pool.checkedout() == 0:
            break
        await asyncio.sleep(0.02)
    assert connections.kept == 0 and container.engine.pool.checkedout() == 0


async def test_a_unit_of_work_opened_inside_another_borrows_from_the_pool(
    container: Container, connections: CommandConnections
) -> None:
    """Keeping one connection, a nested unit of work does not wait for the one its own task
    holds (it would wait forever): it borrows from the pool, and gives it back there."""
    outer_stream, inner_stream = f"thing-{uuid.uuid4()}", f"thing-{uuid.uuid4()}"
    async with UnitOfWork(connections, META) as outer:
        kept = outer.conn
        await outer.append("thing", outer_stream, [ThingCounted(1)])
        async with asyncio.timeout(10), UnitOfWork(connections, META) as inner:
            assert inner.conn is not outer.conn
            await inner.append("thing", inner_stream, [ThingCounted(1)])
            await inner.commit()
        assert container.engine.pool.checkedout() == 1
        await outer.commit()
    assert await _version(container, outer_stream) == 1 and await _version(container, inner_stream) == 1
    assert connections.kept == 1
    async with UnitOfWork(connections, META) as again:  # and the task's next one is kept again
        assert again.conn is kept
        await again.commit()


async def test_a_waiter_cancelled_or_timed_out_loses_no_connection(container: Container) -> None:
    connections = CommandConnections(container.engine, keep=1, wait_seconds=0.2)
    try:
        async with UnitOfWork(connections, META) as held:
            first = held.conn
            # Other tasks, not started from this one (which holds a connection: a task it starts
            # would borrow from the pool, as a nested unit of work does).
            with pytest.raises(sqlalchemy.exc.TimeoutError, match=r"no command connection free within 0\.2"):
                await asyncio.create_task(UnitOfWork(connections, META).__aenter__(), context=Context())
            cancelled = asyncio.create_task(UnitOfWork(connections, META).__aenter__(), context=Context())
            await asyncio.sleep(0.05)
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            assert connections.waiting == 0
            await held.commit()
        async with UnitOfWork(connections, META) as uow:  # the one connection is still there
            assert uow.conn is first
            await uow.commit()
        assert connections.kept == 1
    finally:
        await connections.close()
    assert container.engine.pool.checkedout() == 0


async def test_a_kept_connection_that_died_idle_is_replaced_without_failing_the_command(
    container: Container,
    connections: CommandConnections,
) -> None:
    stream = f"thing-{uuid.uuid4()}"
    async with UnitOfWork(connections, META) as uow:
        pid = await (await asyncpg_of(uow.conn)).fetchval("SELECT pg_backend_pid()")
        await uow.commit()
    async with container.engine.connect() as admin:
        assert (await admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})).scalar_one()
    async with UnitOfWork(connections, META) as uow:
        assert await (await asyncpg_of(uow.conn)).fetchval("SELECT pg_backend_pid()") != pid
        await uow.append("thing", stream, [ThingCounted(1)])
        await uow.commit()
    assert await _version(container, stream) == 1
    assert connections.kept == 1, "the fresh connection is kept in place of the dead one"


async def _cancelled_in(
    connections: CommandConnections,
    statement: Callable[[UnitOfWork], Awaitable[object]],
    *,
    transaction: bool = True,
) -> None:
    """Cancel a task while ``statement`` runs in its unit of work; the task ends cancelled."""
    running = asyncio.Event()

    async def slow() -> None:
        async with UnitOfWork(connections, META, transaction=transaction) as uow:
            running.set()
            await statement(uow)

    task = asyncio.create_task(slow())
    await asyncio.wait_for(running.wait(), 10)
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancelled_statement_does_not_leave_its_connection_kept(
    container: Container, connections: CommandConnections
) -> None:
    async def sleep_on_the_driver(uow: UnitOfWork) -> object:
        return await (await asyncpg_of(uow.conn)).execute("SELECT pg_sleep(5)")

    await _cancelled_in(connections, sleep_on_the_driver)
    async with UnitOfWork(connections, META) as uow:
        assert await (await asyncpg_of(uow.conn)).fetchval("SELECT 1") == 1
        await uow.commit()


async def test_a_task_cancelled_in_a_sqlalchemy_statement_ends_cancelled(
    container: Container, connections: CommandConnections
) -> None:
    """SQLAlchemy invalidates a connection whose statement was cancelled; the unit of work then
    lets the cancellation out (not an error about that connection) and keeps nothing."""

    async def sleep_through_sqlalchemy(uow: UnitOfWork) -> object:
        return await uow.conn.execute(text("SELECT pg_sleep(5)"))

    await _cancelled_in(connections, sleep_through_sqlalchemy)
    assert connections.kept == 0
    async with UnitOfWork(connections, META) as uow:
        assert (await uow.conn.execute(text("SELECT 1"))).scalar_one() == 1
        await uow.commit()


async def test_a_session_left_inside_a_transaction_is_not_kept(
    container: Container, connections: CommandConnections
) -> None:
    async with UnitOfWork(connections, META) as uow:
        first = uow.conn
        await uow.commit()
        # A stray statement after the commit opens a transaction nobody will end.
        await (await asyncpg_of(uow.conn)).execute("BEGIN")
    assert connections.kept == 0
    async with UnitOfWork(connections, META) as uow:
        assert uow.conn is not first
        await uow.commit()


async def test_after_every_idle_session_is_terminated_no_command_and_no_pooled_read_fails(
    container: Container,
) -> None:
    connections = CommandConnections(container.engine, keep=4)
    opened = asyncio.Event()
    held: list[None] = []

    async def hold_one() -> None:
        async with UnitOfWork(connections, META) as uow:
            held.append(None)
            if len(held) == 4:
                opened.set()
            await opened.wait()
            await uow.commit()

    await asyncio.gather(*(hold_one() for _ in range(4)))
    pooled = [await container.engine.connect() for _ in range(6)]
    drivers = [await asyncpg_of(conn) for conn in pooled]
    admin = pooled.pop()
    drivers.pop()
    for conn in pooled:
        await conn.close()
    assert connections.kept == 4
    try:
        killed = await admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
            )
        )
        assert len(killed.all()) >= 9
    finally:
        await admin.close()
    for _ in range(100):  # the driver reads each session's end from its socket
        if all(d.is_closed() for d in drivers):
            break
        await asyncio.sleep(0.02)
    assert all(d.is_closed() for d in drivers)

    streams = [f"thing-{uuid.uuid4()}" for _ in range(8)]

    async def command(stream: str) -> None:
        async with UnitOfWork(connections, META) as uow:
            await uow.append("thing", stream, [ThingCounted(1)])
            await uow.commit()

    async def pooled_read() -> int:
        async with container.engine.connect() as conn:
            return int(await (await asyncpg_of(conn)).fetchval("SELECT 1"))

    results = await asyncio.gather(*(command(s) for s in streams), *(pooled_read() for _ in range(6)))
    assert results[len(streams) :] == [1] * 6
    assert [await _version(container, s) for s in streams] == [1] * len(streams)
    await connections.close()


async def test_a_unit_of_work_without_a_transaction_commits_each_statement_as_it_runs(
    container: Container, connections: CommandConnections
) -> None:
    stream = f"thing-{uuid.uuid4()}"
    async with UnitOfWork(connections, META, transaction=False) as uow:
        driver = await asyncpg_of(uow.conn)
        pid = await driver.fetchval("SELECT pg_backend_pid()")
        await uow.append("thing", stream, [ThingCounted(1)])
        assert not driver.is_in_transaction()
        assert await _version(container, stream) == 1, "visible elsewhere before commit()"
        with pytest.raises(RuntimeError, match="nothing to run at commit"):
            uow.write_at_commit("SELECT 1")
            await uow.commit()
    assert await _version(container, stream) == 1, "nothing rolled back on the way out"
    async with UnitOfWork(connections, META, transaction=False) as uow:
        assert await (await asyncpg_of(uow.conn)).fetchval("SELECT pg_backend_pid()") == pid, "kept"
        await uow.commit()
        assert uow.committed


async def test_a_unit_of_work_without_a_transaction_holds_no_lock(connections: CommandConnections) -> None:
    with pytest.raises(ValueError, match="needs a transaction"):
        UnitOfWork(connections, META, lock="cart-x", transaction=False)


async def test_a_one_statement_command_finding_its_kept_connection_dead_is_retried_on_a_fresh_one(
    container: Container, connections: CommandConnections, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a BEGIN, the handler's first statement is what finds the session gone."""
    bus = CommandBus(connections)
    cart_handlers.register(bus)
    async with UnitOfWork(connections, META, transaction=False) as uow:
        pid = await (await asyncpg_of(uow.conn)).fetchval("SELECT pg_backend_pid()")
        await uow.commit()
    async with container.engine.connect() as admin:
        assert (await admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})).scalar_one()
    # Handed out as if its end had not been read from the socket yet.
    monkeypatch.setattr(connections_module.driver, "session_idle", lambda conn: True)
    result = await bus.dispatch(CreateCart(CartActor("kept-dead")), META)
    assert result.version == 1 and result.position is not None
    assert await _version(container, cart_handlers.stream_id(result.cart_id)) == 1
    assert await _cart_rows(container, result.cart_id) == 1


async def test_a_statement_cancelled_without_a_transaction_does_not_leave_its_connection_kept(
    connections: CommandConnections,
) -> None:
    async def sleep_on_the_driver(uow: UnitOfWork) -> object:
        return await (await asyncpg_of(uow.conn)).execute("SELECT pg_sleep(5)")

    await _cancelled_in(connections, sleep_on_the_driver, transaction=False)
    assert connections.kept == 0, "its statement may still be running"


async def test_a_transaction_opened_under_a_unit_of_work_without_one_is_refused_at_commit(
    connections: CommandConnections,
) -> None:
    async with UnitOfWork(connections, META, transaction=False) as uow:
        await uow.conn.execute(text("SELECT 1"))  # SQLAlchemy begins one of its own
        with pytest.raises(RuntimeError, match="found one open"):
            await uow.commit()
    assert connections.kept == 0
