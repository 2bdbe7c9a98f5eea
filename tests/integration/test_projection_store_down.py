"""A projector whose store is down when it starts: setup is retried with backoff, the failure is
reported (FAILED, the error), and the projector catches up once the store answers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

from elastic_transport import HttpxAsyncHttpNode
from elasticsearch import AsyncElasticsearch

from commands.messages.cart import CreateCart, LineRequest
from gateway.bootstrap.container import Container
from gateway.stores.es_node import PlainJsonNode
from projections import checkpoints
from projections.runner import ProjectionRunner
from projections.search.projector import SearchProjection
from queries.projection_status import ProjectionStatusView
from tests.support.cart import GUEST, META, seed_catalog
from tests.support.stores import FAST_RUNNERS
from tests.support.waiting import read_model_reaches


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def _status(container: Container, name: str, store: str) -> ProjectionStatusView:
    return await container.services.projection_status.status(name, store)


async def test_carts_store_down_at_start_reports_failed_then_catches_up(container: Container) -> None:
    container.mongo_client.set_available(False)
    await seed_catalog(container)
    cart = await container.bus.dispatch(CreateCart(GUEST, lines=(LineRequest("MUG", 1),)), META)
    runner = container.runner("carts")
    runner.start()
    try:

        async def failed() -> bool:
            return (await _status(container, "carts", "mongodb")).state == "FAILED"

        await _until(failed)
        status = await _status(container, "carts", "mongodb")
        assert status.last_error is not None and "unavailable" in status.last_error
        assert runner.running, "the projector keeps retrying; it did not die"
        assert status.owner == container.leases.holder

        container.mongo_client.set_available(True)
        assert cart.position is not None
        await read_model_reaches(container.freshness, "carts", cart.position, 20)
        assert await container.mongo["carts"].find_one({"_id": cart.cart_id}) is not None
        recovered = await _status(container, "carts", "mongodb")
        assert recovered.state == "RUNNING" and recovered.last_error is None
    finally:
        container.mongo_client.set_available(True)
        await runner.stop()


@contextlib.asynccontextmanager
async def _forwarder(port: int, target: str) -> AsyncIterator[None]:
    """The search engine reachable on ``port`` (until then the port is closed)."""
    upstream = urlsplit(target)
    assert upstream.hostname is not None and upstream.port is not None

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(upstream.hostname, upstream.port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
    try:
        yield
    finally:
        server.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_search_engine_down_at_start_reports_failed_then_catches_up(container: Container) -> None:
    settings = container.settings
    assert settings.elasticsearch_url is not None
    port = _free_port()
    client = AsyncElasticsearch(
        f"http://127.0.0.1:{port}",
        node_class=PlainJsonNode if settings.search_in_memory else HttpxAsyncHttpNode,
        request_timeout=5,
    )
    projection = SearchProjection(client, settings.index_prefix)
    runner = ProjectionRunner(projection, container.engine, FAST_RUNNERS)
    runner.start()
    try:

        async def failed() -> bool:
            async with container.engine.connect() as conn:
                row = await checkpoints.load(conn, "search")
            return row is not None and row.state == "FAILED"

        await _until(failed)
        async with container.engine.connect() as conn:
            row = await checkpoints.load(conn, "search")
        assert row is not None and row.last_error and row.failures >= FAST_RUNNERS.failed_after
        assert runner.running

        async with _forwarder(port, settings.elasticsearch_url):

            async def recovered() -> bool:
                async with container.engine.connect() as conn:
                    row = await checkpoints.load(conn, "search")
                return row is not None and row.state == "RUNNING" and row.last_error is None

            await _until(recovered)
            alias = f"{settings.index_prefix}products"
            assert await container.search.indices.exists_alias(name=alias)
            await runner.stop()
    finally:
        await runner.stop()
        await client.close()
