"""Projectors in several processes on one PostgreSQL: one owner per projection (a lease), a
killed owner replaced within 5 s, every event applied exactly once, and rebuilds started from
the gateway while the live projector runs in a ``project`` worker.

The worker processes run the PostgreSQL read models (orders, inventory, timeline); the search
engine and the MongoDB stand-in of these tests live in one process's memory, which workers
leave to the gateway (``Container.start_projectors(scope="shared")``).

Exactly once: a trigger records every move of a checkpoint row (from, to). A batch applies the
events in (from, to] and commits with its move, so the committed moves of a projection forming
one unbroken chain from the start to the end means each event was applied exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import head_position
from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_app
from tests.e2e.cli_harness import free_port
from tests.helpers import gql
from tests.support.inventory import seed_variants, set_stock
from tests.support.order_ledger import append as append_order
from tests.support.orders import happy_path, new_order_id, placed
from tests.support.waiting import eventually, read_model_reaches

POSTGRES_MODELS = {"orders": "order_view", "inventory": "inventory_view", "timeline": "timeline_entries"}
KEYS = {"order_view": "order_id", "inventory_view": "sku", "timeline_entries": "position"}
SKUS = tuple(f"LEASE-{i}" for i in range(6))
TAKEOVER_SECONDS = 5.0
REBUILD = """mutation($name: String!) {
  projectionRebuild(name: $name) { projection { state } userErrors { message } } }"""
PROJECTIONS = "{ projections { name state owner } }"

RECORD_MOVES = """
CREATE TABLE checkpoint_moves (
  id bigserial PRIMARY KEY, name text NOT NULL,
  from_tx bigint NOT NULL, from_pos bigint NOT NULL, to_tx bigint NOT NULL, to_pos bigint NOT NULL);
CREATE FUNCTION record_checkpoint_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.tx_id, NEW.position) IS DISTINCT FROM (OLD.tx_id, OLD.position) THEN
    INSERT INTO checkpoint_moves (name, from_tx, from_pos, to_tx, to_pos)
    VALUES (NEW.name, OLD.tx_id, OLD.position, NEW.tx_id, NEW.position);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER checkpoint_moves AFTER UPDATE ON projection_checkpoints
  FOR EACH ROW EXECUTE FUNCTION record_checkpoint_move();
"""


def _env(container: Container) -> dict[str, str]:
    settings = container.settings
    assert settings.database_url and settings.redis_url and settings.elasticsearch_url
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        REDIS_KEY_PREFIX=settings.redis_prefix,
        ELASTICSEARCH_URL=settings.elasticsearch_url,
        ELASTICSEARCH_IN_MEMORY="1" if settings.search_in_memory else "0",
        ELASTICSEARCH_INDEX_PREFIX=settings.index_prefix,
        MONGODB_URL=settings.mongodb_url or "mongomock://",
        MONGODB_DATABASE=settings.mongodb_database,
        MIGRATE_ON_START="0",
        SEED_DEMO_DATA="0",
        LOG_LEVEL="WARNING",
    )
    return env


@contextlib.asynccontextmanager
async def _processes(container: Container, logs: Path, *commands: list[str]) -> AsyncIterator[list[Any]]:
    """Start ``commerce-gateway`` processes; each is stopped (or killed) in ``finally``."""
    started: list[asyncio.subprocess.Process] = []
    try:
        for index, command in enumerate(commands):
            log = (logs / f"process-{index}-{command[0]}.log").open("wb")
            started.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gateway.cli", *command, env=_env(container), stdout=log, stderr=log
                )
            )
        yield started
    finally:
        for process in started:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _owners(container: Container) -> dict[str, str | None]:
    service = container.services.projection_status
    return {name: (await service.status(name, "postgresql")).owner for name in POSTGRES_MODELS}


def _pid(owner: str) -> int:
    return int(owner.split(" ")[0].rsplit(":", 1)[1])


async def _owned_by(container: Container, pids: set[int], timeout: float = 60.0) -> dict[str, str]:
    """Wait until every PostgreSQL read model has an owner among ``pids``."""
    async with asyncio.timeout(timeout):
        while True:
            owners = await _owners(container)
            if all(owner is not None and _pid(owner) in pids for owner in owners.values()):
                return {name: owner for name, owner in owners.items() if owner is not None}
            await asyncio.sleep(0.05)


async def _moves(container: Container, name: str) -> int:
    async with container.engine.connect() as conn:
        found = await conn.execute(text("SELECT count(*) FROM checkpoint_moves WHERE name = :n"), {"n": name})
        return int(found.scalar_one())


async def _applying(container: Container, names: Iterable[str], batches: int = 3) -> None:
    """Wait until each of ``names`` commits ``batches`` more checkpoint moves: whoever owns it
    now has applied that many batches of the writes still coming in."""
    targets = {name: await _moves(container, name) + batches for name in names}

    async def applied() -> bool:
        return all([await _moves(container, name) >= target for name, target in targets.items()])

    await eventually(
        applied, timeout=60, interval=0.05, message=f"{batches} more batches of each of {sorted(targets)}"
    )


class Writer:
    """A stream of order and stock writes straight through the ledger and the command bus."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.orders = 0
        self.counter = itertools.count()

    async def round(self) -> None:
        n = next(self.counter)
        order_id = new_order_id()
        place = placed(order_id, f"cust-{n % 3}")
        await append_order(self.container.engine, order_id, place, *happy_path(order_id, place.total)[:2])
        self.orders += 1
        await set_stock(self.container, SKUS[n % len(SKUS)], 10 + n)

    async def until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.round()
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def _writing(writer: Writer) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(writer.until(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def _caught_up(container: Container) -> None:
    async with container.engine.connect() as conn:
        head = await head_position(conn)
    for name in POSTGRES_MODELS:
        await read_model_reaches(container.freshness, name, head, 30)


async def _dump(container: Container, table: str) -> list[tuple[Any, ...]]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT * FROM {table} ORDER BY {KEYS[table]}"))
        return [tuple(row) for row in rows]


async def _assert_equal_to_fresh_folds(container: Container) -> None:
    for name, table in POSTGRES_MODELS.items():
        live = await _dump(container, table)
        # A fresh fold: rebuilt from the ledger (pausing the worker that owns it), nothing else moving.
        await container.rebuilder.run(container.runner(name))
        assert await _dump(container, table) == live, f"{name} differs from a fresh fold of the ledger"


async def _assert_applied_exactly_once(
    container: Container, names: Iterable[str] = tuple(POSTGRES_MODELS)
) -> None:
    async with container.engine.connect() as conn:
        moves = (await conn.execute(text("SELECT * FROM checkpoint_moves ORDER BY id"))).all()
        stored = {
            row.name: (row.tx_id, row.position)
            for row in await conn.execute(text("SELECT name, tx_id, position FROM projection_checkpoints"))
        }
    for name in names:
        chain = [m for m in moves if m.name == name]
        assert len(chain) > 1
        at = (0, 0)
        for move in chain:
            assert (move.from_tx, move.from_pos) == at, f"{name}: a batch overlapped or skipped events"
            at = (move.to_tx, move.to_pos)
        assert at == stored[name]


async def test_one_owner_per_projection_and_a_killed_owner_is_replaced(
    container: Container, tmp_path: Path
) -> None:
    async with container.engine.begin() as conn:
        await (await asyncpg_of(conn)).execute(RECORD_MOVES)
    await seed_variants(container, SKUS)
    writer = Writer(container)
    port = str(free_port())
    commands = [["project"], ["project"], ["serve", "--port", port]]
    async with asyncio.timeout(240), _processes(container, tmp_path, *commands) as processes:
        pids = {process.pid for process in processes}
        async with _writing(writer):
            owners = await _owned_by(container, pids)
            await _applying(container, POSTGRES_MODELS)
            victim = _pid(owners["orders"])
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            survivors = pids - {victim}
            await _owned_by(container, survivors, timeout=TAKEOVER_SECONDS + 5)
            took_over = time.monotonic() - killed_at
            await _applying(container, POSTGRES_MODELS)
        assert took_over <= TAKEOVER_SECONDS, f"took {took_over:.1f} s to take over"
        await _caught_up(container)
        await _assert_applied_exactly_once(container)
        async with container.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM order_view"))).scalar_one() == writer.orders
        await _assert_equal_to_fresh_folds(container)


async def test_rebuild_from_the_gateway_while_a_worker_runs_the_projector(
    container: Container, tokens: JwtAuthenticator, tmp_path: Path
) -> None:
    await seed_variants(container, SKUS)
    writer = Writer(container)
    for _ in range(20):  # history enough that the replay overlaps writes
        await writer.round()
    admin = tokens.mint("admin-1", ["admin"])
    transport = httpx.ASGITransport(app=build_app(container))
    async with (
        asyncio.timeout(240),
        _processes(container, tmp_path, ["project"]) as (worker,),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        await _owned_by(container, {worker.pid})
        # This process runs no projector: the live ones are the worker's.
        assert not any(runner.running for runner in container.runners)
        listed = await gql(client, PROJECTIONS, token=admin)
        owners = {p["name"]: p["owner"] for p in listed["data"]["projections"]}
        assert all(_pid(owners[name]) == worker.pid for name in POSTGRES_MODELS), listed
        for name in POSTGRES_MODELS:
            before = writer.orders
            async with _writing(writer):
                started = await gql(client, REBUILD, {"name": name}, token=admin)
                assert started["data"]["projectionRebuild"]["userErrors"] == [], started
                progress = container.rebuilder.progress(name)
                assert progress is not None
                await container.rebuilder.tasks[name]
                await asyncio.sleep(0.3)
            assert progress.error is None, progress.error
            assert writer.orders > before + 1, "the rebuild must overlap writes"
            # The worker took its lease back and carries on from the copy's checkpoint.
            await _owned_by(container, {worker.pid}, timeout=10)
        await _caught_up(container)
        async with container.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM order_view"))).scalar_one() == writer.orders
            stocked = (await conn.execute(text("SELECT count(*) FROM inventory_view"))).scalar_one()
        assert stocked == len(SKUS)
        await _assert_equal_to_fresh_folds(container)
    assert worker.returncode == 0
