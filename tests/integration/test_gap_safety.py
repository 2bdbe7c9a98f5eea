"""Gap safety: no committed event is skipped or applied twice, whatever the commit order."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import text

from commands.store.ledger.reader import Checkpoint, read_batch
from commands.store.ledger.writer import StreamConflict
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from projections import checkpoints
from tests.support.projections import AmountRecorded, AppliedLog, RedisDocs
from tests.support.stores import FAST_RUNNERS

META = MessageMetadata(actor="test")


class _Rollback(Exception):
    pass


async def _ledger_amounts(container: Container) -> dict[str, list[int]]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT stream_id, data->>'amount' AS amount FROM ledger_events "
                "ORDER BY stream_id, stream_version"
            )
        )
        by_stream: dict[str, list[int]] = {}
        for row in rows:
            by_stream.setdefault(row.stream_id, []).append(int(row.amount))
    return by_stream


async def test_concurrent_appenders_with_slow_and_aborted_transactions(container: Container) -> None:
    log = AppliedLog(container.engine)
    docs = RedisDocs(container.redis, container.settings.redis_prefix)
    container.add_projections([log, docs], FAST_RUNNERS)
    await container.start_projectors()

    async def appender(i: int) -> list[int]:
        rng = random.Random(i)
        stream = f"acct-{rng.randrange(6)}"
        for _attempt in range(50):
            try:
                async with UnitOfWork(container.engine, META) as uow:
                    if rng.random() < 0.4:
                        # Take an xid now, so this transaction sorts before later ones that commit first.
                        await uow.conn.execute(text("SELECT pg_current_xact_id()"))
                    await asyncio.sleep(rng.uniform(0, 0.03))  # the scenario: writers that take their time
                    events = [AmountRecorded(i * 10 + k) for k in range(rng.randint(1, 3))]
                    recorded = await uow.append("test", stream, events)
                    if rng.random() < 0.3:
                        # The scenario: a slow writer holds its appended, uncommitted events open.
                        await asyncio.sleep(rng.uniform(0.05, 0.3))
                    if rng.random() < 0.15:
                        raise _Rollback
                    await uow.commit()
                    return [e.position for e in recorded]
            except StreamConflict:
                await asyncio.sleep(rng.uniform(0, 0.01))  # jitter before retrying a lost race
            except _Rollback:
                return []
        raise AssertionError("appender never got through")

    results = await asyncio.gather(*(appender(i) for i in range(80)))
    committed = sorted(p for positions in results for p in positions)
    assert committed, "the scenario must commit something"
    for position in committed[-20:]:
        await container.freshness.wait_for("applied_log", position, timeout=10)
        await container.freshness.wait_for("redis_docs", position, timeout=10)
    await container.stop_projectors()

    async with container.engine.connect() as conn:
        applied = [
            r.position for r in await conn.execute(text("SELECT position FROM test_applied ORDER BY 1"))
        ]
        in_ledger = [
            r.position for r in await conn.execute(text("SELECT position FROM ledger_events ORDER BY 1"))
        ]
        rows = await checkpoints.load_all(conn)
    assert applied == in_ledger == committed
    assert all(row.last_error is None and row.failures == 0 for row in rows)
    for stream_id, amounts in (await _ledger_amounts(container)).items():
        assert await docs.folded(stream_id) == amounts, stream_id


async def test_early_xid_appending_next_stream_version_after_a_later_commit(container: Container) -> None:
    """A gets its xid first; B appends v1 and commits; A appends v2 and commits.

    In (tx_id, position) order A's v2 comes before B's v1: the projector must
    neither pass B while A is open nor fold v2 before v1.
    """
    log = AppliedLog(container.engine)
    docs = RedisDocs(container.redis, container.settings.redis_prefix)
    container.add_projections([log, docs], FAST_RUNNERS)
    log_runner, docs_runner = container.runner("applied_log"), container.runner("redis_docs")
    await log.setup()

    async with UnitOfWork(container.engine, META) as tx_a:
        await tx_a.conn.execute(text("SELECT pg_current_xact_id()"))
        async with UnitOfWork(container.engine, META) as tx_b:
            (b_event,) = await tx_b.append("test", "acct-x", [AmountRecorded(1)], expected_version=0)
            await tx_b.commit()
        # B is committed but sits above the xmin horizon held by A: nothing may be applied yet.
        assert (await log_runner.catch_up_once()) == (False, True)
        (a_event,) = await tx_a.append("test", "acct-x", [AmountRecorded(2)], expected_version=1)
        await tx_a.commit()

    assert a_event.tx_id < b_event.tx_id and a_event.stream_version == 2
    await log_runner.catch_up()
    await docs_runner.catch_up()
    async with container.engine.connect() as conn:
        applied = [
            r.position for r in await conn.execute(text("SELECT position FROM test_applied ORDER BY 1"))
        ]
        batch = await read_batch(conn, Checkpoint(), 10)
    assert applied == sorted([a_event.position, b_event.position])
    assert [e.position for e in batch.events] == [a_event.position, b_event.position]
    assert await docs.folded("acct-x") == [1, 2]


async def test_a_read_held_at_the_horizon_carries_one_row_above_it_not_all(container: Container) -> None:
    """Events committed above the horizon are not sent to be dropped: one row says 'come back'."""
    from commands.store.driver import asyncpg_of
    from commands.store.ledger.reader import _READ_BATCH

    async with UnitOfWork(container.engine, META) as before:
        (settled,) = await before.append("test", "acct-early", [AmountRecorded(0)])
        await before.commit()
    async with UnitOfWork(container.engine, META) as holder:
        await holder.conn.execute(text("SELECT pg_current_xact_id()"))
        for i in range(12):
            async with UnitOfWork(container.engine, META) as later:
                await later.append("test", f"acct-{i}", [AmountRecorded(i)])
                await later.commit()
        async with container.engine.connect() as conn:
            batch = await read_batch(conn, Checkpoint(), 100)
            rows = await (await asyncpg_of(conn)).fetch(_READ_BATCH, "0", 0, 100)
    assert [e.position for e in batch.events] == [settled.position]
    assert batch.held_back
    assert [row["settled"] for row in rows] == [True, False]


async def test_the_gap_safe_read_walks_the_index_and_sorts_nothing(container: Container) -> None:
    """A read costs the rows it returns, not the ledger past the checkpoint (a sort would)."""
    import json

    from commands.store.driver import asyncpg_of
    from commands.store.ledger.reader import _READ_BATCH

    for i in range(40):
        async with UnitOfWork(container.engine, META) as uow:
            await uow.append("test", f"acct-{i}", [AmountRecorded(k) for k in range(25)])
            await uow.commit()
    async with container.engine.connect() as conn:
        driver = await asyncpg_of(conn)
        await driver.execute("ANALYZE ledger_events")
        # The plan for these values, and the generic plan a prepared statement may keep.
        custom = await driver.fetchval(f"EXPLAIN (FORMAT JSON) {_READ_BATCH}", "0", 5, 10)
        await driver.execute(f"PREPARE read_batch (text, bigint, int) AS {_READ_BATCH}")
        await driver.execute("SET plan_cache_mode = force_generic_plan")
        generic = await driver.fetchval("EXPLAIN (FORMAT JSON) EXECUTE read_batch('0', 5, 10)")
        assert "$1" in json.dumps(generic), "a generic plan shows its parameters"
        for explained in (custom, generic):
            plan = explained if isinstance(explained, str) else json.dumps(explained)
            assert '"Sort"' not in plan and "Seq Scan" not in plan and "Gather" not in plan, plan
            assert "ledger_events_tx_order" in plan, plan
