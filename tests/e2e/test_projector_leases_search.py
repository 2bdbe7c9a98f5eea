"""The search read model shared by URL: leased across processes like the PostgreSQL ones.

One standalone search engine (osmem, the embedded engine run on its own) serves every process of
these tests through ``ELASTICSEARCH_URL`` with ``SEARCH_ENGINE=osmem``: its index outlives each
gateway process, so the search projection is no longer left to one process's memory. Two
``project`` workers and a ``serve`` share it; a killed owner of the search projection is
replaced within 5 s, and a rebuild started through the ``serve`` while a worker runs the live
projector leaves the index equal to a fresh fold.

Exactly once and fresh folds are checked as in ``test_projector_leases``: an unbroken chain of
committed checkpoint moves, and the live documents against a fold of the whole ledger into a
new index.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import head_position
from gateway.bootstrap.container import Container, build_container
from gateway.bootstrap.settings import OSMEM_ENGINE, ConfigurationError, Settings
from gateway.bootstrap.wiring import wire
from gateway.edge.auth import JwtAuthenticator
from gateway.stores.search_process import start_search
from projections.runner import ProjectionRunner
from projections.search.projector import FIRST_GENERATION, SearchProjection, alias_name, index_name
from tests.e2e.cli_harness import free_port
from tests.e2e.test_projector_leases import (
    PROJECTIONS,
    REBUILD,
    RECORD_MOVES,
    TAKEOVER_SECONDS,
    Writer,
    _applying,
    _assert_applied_exactly_once,
    _pid,
    _processes,
    _writing,
)
from tests.helpers import gql
from tests.support.catalog import product, upsert, variant
from tests.support.inventory import set_stock
from tests.support.stores import FAST_RUNNERS
from tests.support.waiting import read_model_reaches

SEARCH = "search"
HANDLES = tuple(f"lease-search-{i}" for i in range(6))
READY_SECONDS = 120.0


@pytest.fixture(scope="module")
def search_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A search engine of its own for these tests, reached by URL only."""
    server = start_search(tmp_path_factory.mktemp("search") / "search.log")
    try:
        yield str(server.url)
    finally:
        server.close()


@pytest.fixture
async def shared(
    settings: Settings, search_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Container]:
    """This test's container on the shared engine; the processes it starts get the same settings."""
    # _processes passes the environment on (minus *_URL, which it sets from the container).
    monkeypatch.setenv("SEARCH_ENGINE", OSMEM_ENGINE)
    built = await build_container(
        settings.with_overrides(
            elasticsearch_url=search_url, search_in_memory=False, search_engine=OSMEM_ENGINE
        )
    )
    wire(built, FAST_RUNNERS)
    try:
        assert "elasticsearch" not in built.volatile_stores
        yield built
    finally:
        await built.close()


def test_search_engine_setting_shares_an_osmem_server_by_url() -> None:
    shared = Settings.from_env({"ELASTICSEARCH_URL": "http://search:9200", "SEARCH_ENGINE": "OSMem"})
    assert shared.search_plain_json and "elasticsearch" not in shared.volatile_stores
    stock = Settings.from_env({"ELASTICSEARCH_URL": "http://search:9200"})
    assert not stock.search_plain_json
    with pytest.raises(ConfigurationError, match="SEARCH_ENGINE"):
        Settings.from_env({"SEARCH_ENGINE": "solr"})


class CatalogWriter(Writer):
    """A stream of product upserts and stock changes through the command bus."""

    def __init__(self, container: Container) -> None:
        super().__init__(container)
        self.titles: dict[str, str] = {}
        self.rounds = 0

    async def round(self) -> None:
        n = next(self.counter)
        handle = HANDLES[n % len(HANDLES)]
        title = f"Lease search {n}"
        skus = [f"{handle.upper()}-{size}" for size in ("S", "M")]
        await upsert(
            self.container, product(handle, title, [variant(sku, f"{10 + n % 7}.00") for sku in skus])
        )
        self.titles[handle] = title
        await set_stock(self.container, skus[n % 2], n % 5)
        self.rounds += 1


async def _search_owned_by(container: Container, pids: set[int], timeout: float = 60.0) -> str:
    """Wait until a process among ``pids`` holds the search projection's lease."""
    async with asyncio.timeout(timeout):
        while True:
            owner = await container.leases.owner(SEARCH)
            if owner is not None and _pid(owner) in pids:
                return owner
            await asyncio.sleep(0.05)


async def _search_caught_up(container: Container) -> None:
    async with container.engine.connect() as conn:
        head = await head_position(conn)
    await read_model_reaches(container.freshness, SEARCH, head, 30)


async def _documents(container: Container, index: str) -> dict[str, dict[str, Any]]:
    await container.search.indices.refresh(index=index)
    found = await container.search.search(index=index, query={"match_all": {}}, size=1000)
    return {hit["_id"]: hit["_source"] for hit in found["hits"]["hits"]}


def _as_searched(documents: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The documents without each variant's ``stock_version``: a stock change that flips nothing is
    not written, so that guard holds the version of the last one written, which depends on where
    the batches fell (what search filters on, ``in_stock``, does not)."""
    return {
        product_id: {
            **doc,
            "variants": [
                {k: v for k, v in variant.items() if k != "stock_version"} for variant in doc["variants"]
            ],
        }
        for product_id, doc in documents.items()
    }


async def _assert_equal_to_a_fresh_fold(container: Container, writer: CatalogWriter) -> None:
    prefix = container.settings.index_prefix
    live = await _documents(container, alias_name(prefix))
    assert {doc["handle"]: doc["title"] for doc in live.values()} == writer.titles
    fresh = SearchProjection(container.search, prefix, name="search~fresh", index=index_name(prefix, "fresh"))
    await ProjectionRunner(fresh, container.engine, FAST_RUNNERS).catch_up()
    assert fresh.index is not None
    folded = await _documents(container, fresh.index)
    assert _as_searched(live) == _as_searched(folded), "search differs from a fresh fold of the ledger"


async def _ready(port: str) -> None:
    async with asyncio.timeout(READY_SECONDS), httpx.AsyncClient(trust_env=False) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{port}/readyz", timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.2)


async def test_search_shared_by_url_has_one_owner_and_a_killed_owner_is_replaced(
    shared: Container, tmp_path: Path
) -> None:
    async with shared.engine.begin() as conn:
        await (await asyncpg_of(conn)).execute(RECORD_MOVES)
    writer = CatalogWriter(shared)
    commands = [["project"], ["project"], ["serve", "--port", str(free_port())]]
    async with asyncio.timeout(240), _processes(shared, tmp_path, *commands) as processes:
        pids = {process.pid for process in processes}
        async with _writing(writer):
            owner = await _search_owned_by(shared, pids)
            await _applying(shared, [SEARCH])
            victim = _pid(owner)
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            await _search_owned_by(shared, pids - {victim}, timeout=TAKEOVER_SECONDS + 5)
            took_over = time.monotonic() - killed_at
            await _applying(shared, [SEARCH])
        assert took_over <= TAKEOVER_SECONDS, f"took {took_over:.1f} s to take over"
        await _search_caught_up(shared)
        await _assert_applied_exactly_once(shared, [SEARCH])
        await _assert_equal_to_a_fresh_fold(shared, writer)


async def test_search_rebuild_through_serve_while_a_worker_runs_the_projector(
    shared: Container, tokens: JwtAuthenticator, tmp_path: Path
) -> None:
    writer = CatalogWriter(shared)
    for _ in range(20):  # history enough that the replay overlaps writes
        await writer.round()
    admin = tokens.mint("admin-1", ["admin"])
    port = str(free_port())
    alias = alias_name(shared.settings.index_prefix)
    async with (
        asyncio.timeout(240),
        _processes(shared, tmp_path, ["project"]) as (worker,),
    ):
        # The worker first: it holds the search lease, and the serve started next stands by.
        await _search_owned_by(shared, {worker.pid})
        async with _processes(shared, tmp_path, ["serve", "--port", port]) as (serve,):
            await _ready(port)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
                listed = await gql(client, PROJECTIONS, token=admin)
                owners = {p["name"]: p["owner"] for p in listed["data"]["projections"]}
                assert _pid(owners[SEARCH]) == worker.pid, listed
                before = writer.rounds
                async with _writing(writer):
                    started = await gql(client, REBUILD, {"name": SEARCH}, token=admin)
                    assert started["data"]["projectionRebuild"]["userErrors"] == [], started
                    await _rebuilt(client, admin, alias, shared)
                assert writer.rounds > before + 1, "the rebuild must overlap writes"
            # The lease is taken back after the swap, from the copy's checkpoint.
            await _search_owned_by(shared, {worker.pid, serve.pid}, timeout=10)
            await _search_caught_up(shared)
            await _assert_equal_to_a_fresh_fold(shared, writer)
    assert worker.returncode == 0


async def _rebuilt(client: httpx.AsyncClient, token: str, alias: str, container: Container) -> None:
    """Wait until the alias points at a rebuilt index and the projection runs again."""
    first = index_name(container.settings.index_prefix, FIRST_GENERATION)
    async with asyncio.timeout(120):
        while True:
            listed = await gql(client, PROJECTIONS, token=token)
            state = {p["name"]: p["state"] for p in listed["data"]["projections"]}[SEARCH]
            indices = set((await container.search.indices.get_alias(name=alias)).body)
            if state != "REBUILDING" and indices and first not in indices:
                return
            await asyncio.sleep(0.1)
