"""Composition root: builds every pool, client and service a process needs.

Nothing connects at import time; ``build_container`` does it all, and
``Container.close`` releases it in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import msgspec
import redis.asyncio as redis_async
from elastic_transport import AiohttpHttpNode
from elasticsearch import AsyncElasticsearch
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from commands.bus import CommandBus
from commands.store.connections import CommandConnections
from commands.store.driver import replace_closed_on_checkout
from commands.store.ledger.announcer import LedgerAnnouncer
from commands.store.ledger.reader import LEDGER_CHANNEL, Checkpoint
from commands.store.migrate import migrate
from gateway.bootstrap.catch_up import StartupCatchUp
from gateway.bootstrap.settings import PROJECTORS_ALL, PROJECTORS_PRIVATE, PROJECTORS_SHARED, Settings
from gateway.edge.auth import JwtAuthenticator
from gateway.realtime.notifications import RECONNECTED, NotificationHub, asyncpg_dsn
from gateway.stores.embedded import EmbeddedStores
from gateway.stores.es_node import PlainJsonNode
from gateway.stores.es_serializers import search_serializers
from projections import checkpoints
from projections.batch_commits import BatchCommits
from projections.checkpoints import CHECKPOINT_CHANNEL, parse_announcement
from projections.hurry import ProjectorHurry
from projections.lease import CONTROL_CHANNEL, LeaseKeeper
from projections.rebuild import Rebuilder
from projections.runner import Projection, ProjectionRunner, RunnerConfig
from projections.tail import LedgerTail
from queries.freshness import CheckpointWatcher, FreshnessService

if TYPE_CHECKING:
    from gateway.bootstrap.services import Services

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    # The same pool, for the read models' queries: each statement commits alone (no BEGIN and no
    # ROLLBACK around a read: one round trip instead of three; READ COMMITTED gave every
    # statement its own snapshot anyway).
    reads: AsyncEngine
    redis: redis_async.Redis
    search: AsyncElasticsearch
    mongo_client: Any
    mongo: AsyncDatabase[dict[str, Any]]
    # Connections the units of work keep between them (shared by the bus and the settlement).
    connections: CommandConnections
    bus: CommandBus
    watcher: CheckpointWatcher
    freshness: FreshnessService
    authenticator: JwtAuthenticator
    hub: NotificationHub
    rebuilder: Rebuilder
    # This process's projection leases (one owner per projection across processes).
    leases: LeaseKeeper
    runners: list[ProjectionRunner]
    hurry: ProjectorHurry
    # /readyz: whether the read models have passed the ledger head noted when projectors started.
    catch_up: StartupCatchUp
    embedded: EmbeddedStores | None = None
    # One ledger read per wake-up, shared by this process's runners.
    tail: LedgerTail | None = None
    # One PostgreSQL transaction for the batches this process's runners have ready together.
    commits: BatchCommits | None = None
    # Read models whose store lost everything at restart (in-memory stand-ins).
    volatile_stores: set[str] = field(default_factory=set)
    # Read models no other process can reach (the MongoDB stand-in): only this process projects them.
    private_stores: set[str] = field(default_factory=set)
    # Set by gateway.bootstrap.wiring.wire: the typed services of this process.
    _services: Services | None = None
    # Coroutines run by close(), newest first (domain clients, background tasks).
    _closers: list[Any] = field(default_factory=list)

    @property
    def services(self) -> Services:
        if self._services is None:
            raise LookupError("the container is not wired (gateway.bootstrap.wiring.wire)")
        return self._services

    @services.setter
    def services(self, services: Services) -> None:
        self._services = services

    def on_close(self, closer: Any) -> None:
        """Register an async callable to run at close (before stores are released)."""
        self._closers.append(closer)

    def runner(self, name: str) -> ProjectionRunner:
        for runner in self.runners:
            if runner.name == name:
                return runner
        raise LookupError(name)

    def add_projections(self, projections: Sequence[Projection], config: RunnerConfig | None = None) -> None:
        if self.tail is None:
            self.tail = LedgerTail(self.engine, hold_connection=True)
        if self.commits is None:
            self.commits = BatchCommits(self.engine)
        for projection in projections:
            self.runners.append(
                ProjectionRunner(
                    projection,
                    self.engine,
                    config,
                    on_advance=self._announce,
                    lease=self.leases,
                    volatile=projection.store in self.volatile_stores,
                    tail=self.tail,
                    sagas=self.bus.sagas,
                    commits=self.commits,
                )
            )

    def _announce(self, name: str, checkpoint: Checkpoint) -> None:
        self.watcher.observe(name, (checkpoint.tx_id, checkpoint.position))

    def _on_ledger(self, payload: str) -> None:
        announcer = self.connections.announcer
        if announcer is not None and announcer.own(payload):
            return  # this process's own commits: its readers were woken at the commit
        self._ledger_moved()

    def _ledger_moved(self) -> None:
        self.freshness.ledger_moved()
        if self.tail is not None:
            self.tail.notified()
        for runner in self.runners:
            runner.wake()

    def _sagas_ended(self) -> None:
        for runner in self.runners:
            runner.sagas_ended()

    def _on_control(self, payload: str) -> None:
        if self.hurry.heard(payload):
            return
        # A rebuild pauses the live projector and releases it after the swap, both with this
        # notification: answers kept from the model (search answers) must not outlive the swap.
        self.watcher.replaced(None if payload == RECONNECTED else payload)
        for runner in self.runners:
            if payload in (RECONNECTED, runner.name):
                runner.control()

    def _on_checkpoint(self, payload: str) -> None:
        if payload == RECONNECTED:
            return
        parsed = parse_announcement(payload)
        if parsed is not None:
            name, checkpoint = parsed
            self.watcher.observe(name, (checkpoint.tx_id, checkpoint.position))

    async def start_projectors(self, *, scope: str = PROJECTORS_ALL) -> None:
        """Start the runners; each applies only while it holds its projection's lease.

        A read model whose store is in this process's memory (``volatile_stores``) starts over
        from the beginning of the ledger when its runner takes the lease. ``scope``:
        - ``all``: every runner;
        - ``shared`` (a ``project`` worker): not those whose store is this worker's own memory,
          which no reader can reach;
        - ``private`` (``serve`` beside a ``project`` worker): only those whose store no other
          process can reach. A volatile store another process reaches (the embedded search
          engine) is still started over here, before any reader is served, then left to it.
        """
        await self.catch_up.note_start()
        for runner in self.runners:
            store = runner.projection.store
            volatile = store in self.volatile_stores
            if scope == PROJECTORS_SHARED and volatile:
                log.info(
                    "projection left to the serving gateway: its store is in this process's memory",
                    extra={"projection": runner.name, "store": store},
                )
                continue
            if volatile:
                await self._start_over(runner)
            if scope == PROJECTORS_PRIVATE and store not in self.private_stores:
                await self.leases.release(runner.name)
                continue
            runner.start()

    async def _start_over(self, runner: ProjectionRunner) -> None:
        # Before any reader is served: the store is empty, so the stored checkpoint must not count.
        if not await self.leases.acquire(runner.name):
            log.warning(
                "another process owns this projection, whose store here is in memory: reads of it "
                "in this process stay empty until this process takes the lease",
                extra={"projection": runner.name, "owner": await self.leases.owner(runner.name)},
            )
            return
        async with self.engine.begin() as conn:
            await checkpoints.reset(conn, runner.name)
        self.watcher.reset(runner.name)

    async def stop_projectors(self) -> None:
        for task in list(self.rebuilder.tasks.values()):
            task.cancel()
        await _bounded("rebuilds", asyncio.gather(*self.rebuilder.tasks.values(), return_exceptions=True))
        await _bounded("projectors", asyncio.gather(*(runner.stop() for runner in self.runners)))

    async def close(self) -> None:
        # Every step is bounded: a stuck client must not keep the process (or a test session)
        # from stopping, and the embedded servers must still be stopped after it.
        await self.stop_projectors()
        if self.commits is not None:
            await _bounded("projection commits", self.commits.close())
        if self.tail is not None:
            await _bounded("ledger tail", self.tail.close())
        await _bounded("projector hurries", self.hurry.close())
        for closer in reversed(self._closers):
            await _bounded(getattr(closer, "__qualname__", "service"), closer())
        await _bounded("leases", self.leases.close())
        await _bounded("notification hub", self.hub.stop())
        await _bounded("search client", self.search.close())
        await _bounded("redis client", self.redis.aclose())
        await _bounded("mongodb client", self.mongo_client.close())
        await _bounded("command connections", self.connections.close())
        await _bounded("database pool", self.engine.dispose())
        if self.embedded is not None:
            await self.embedded.close()


CLOSE_STEP_SECONDS = 10.0


async def _bounded(what: str, step: Awaitable[Any]) -> None:
    try:
        await asyncio.wait_for(step, CLOSE_STEP_SECONDS)
    except TimeoutError:
        log.error("closing %s took over %.0f s; went on without it", what, CLOSE_STEP_SECONDS)
    except Exception:
        log.exception("closing %s failed", what)


async def build_container(settings: Settings, *, ephemeral: bool = False) -> Container:
    embedded: EmbeddedStores | None = None
    if None in (settings.database_url, settings.redis_url, settings.elasticsearch_url, settings.mongodb_url):
        embedded, settings = await EmbeddedStores.start(settings, ephemeral=ephemeral)
    try:
        return await _build(settings, embedded)
    except BaseException:
        if embedded is not None:
            await embedded.close()
        raise


async def _build(settings: Settings, embedded: EmbeddedStores | None) -> Container:
    assert settings.database_url and settings.redis_url and settings.elasticsearch_url
    # Pool sized for a 2-core box serving bursts: commands keep up to 20 of these (their units
    # of work queue in turn beyond that: commands.store.connections); the rest serve reads,
    # claims and projectors.
    engine = create_async_engine(
        settings.database_url,
        pool_size=20,
        max_overflow=20,
        # json/jsonb columns (every ledger event's data and metadata) decoded by msgspec: the same
        # values as json.loads at a quarter of its CPU, and a purchase decodes about sixty.
        json_deserializer=msgspec.json.decode,
    )
    replace_closed_on_checkout(engine)
    if settings.migrate_on_start:
        await migrate(engine)
    search = AsyncElasticsearch(
        settings.elasticsearch_url,
        node_class=PlainJsonNode if settings.search_plain_json else AiohttpHttpNode,
        request_timeout=10,
        serializers=search_serializers(),
    )
    mongo_client = _mongo_client(settings)
    mongo = cast(AsyncDatabase[dict[str, Any]], mongo_client[settings.mongodb_database])
    watcher = CheckpointWatcher()
    reads = engine.execution_options(isolation_level="AUTOCOMMIT")
    freshness = FreshnessService(reads, watcher)
    runners: list[ProjectionRunner] = []
    # A unit of work's commit wakes this process's readers at once (``Container._ledger_moved``).
    announcer = LedgerAnnouncer(asyncpg_dsn(settings.database_url))
    connections = CommandConnections(engine, announcer=announcer)
    container = Container(
        settings=settings,
        engine=engine,
        reads=reads,
        redis=redis_async.Redis.from_url(settings.redis_url),
        search=search,
        mongo_client=mongo_client,
        mongo=mongo,
        connections=connections,
        bus=CommandBus(connections),
        watcher=watcher,
        freshness=freshness,
        authenticator=JwtAuthenticator(settings.jwt_secret),
        hub=NotificationHub(settings.database_url),
        rebuilder=Rebuilder(engine),
        leases=LeaseKeeper(settings.database_url),
        runners=runners,
        hurry=ProjectorHurry(engine, runners),
        catch_up=StartupCatchUp(engine, freshness),
        embedded=embedded,
        volatile_stores=set(settings.volatile_stores),
        private_stores=set(settings.private_stores),
    )
    # So do this process's other commits (those through SQLAlchemy's transactions).
    event.listen(engine.sync_engine, "commit", lambda _conn: container.freshness.ledger_moved())
    watcher.on_wanted = container.hurry.want
    container.bus.sagas.on_idle(container._sagas_ended)
    announcer.wake_locally(container._ledger_moved)
    container.hub.subscribe(LEDGER_CHANNEL, container._on_ledger)
    container.hub.subscribe(CHECKPOINT_CHANNEL, container._on_checkpoint)
    container.hub.subscribe(CONTROL_CHANNEL, container._on_control)
    await container.hub.start()
    return container


def _mongo_client(settings: Settings) -> Any:
    if settings.mongo_stand_in:
        from gateway.stores.mongo_stand_in import StandInMongoClient

        return StandInMongoClient()
    assert settings.mongodb_url
    return AsyncMongoClient(settings.mongodb_url, serverSelectionTimeoutMS=3000, tz_aware=True)
