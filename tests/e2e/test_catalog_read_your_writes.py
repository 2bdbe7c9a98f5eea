"""consistentWith on catalog reads: wait for the search model, or STALE_READ."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest

from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import Settings
from gateway.edge.auth import JwtAuthenticator
from tests.helpers import error_codes, gql

UPSERT = """mutation($input: ProductUpsertInput!) { productUpsert(input: $input) { position } }"""
READ = """query($at: Position) {
  product(handle: "cedar-stool", consistentWith: $at) { title }
  variant(sku: "STOOL-1", consistentWith: $at) { sku }
  products(query: "cedar", consistentWith: $at) { totalCount freshness { lagEvents } }
}"""
STOOL = {
    "handle": "cedar-stool",
    "title": "Cedar stool",
    "currencyCode": "USD",
    "variants": [{"sku": "STOOL-1", "title": "Natural", "price": "45.00"}],
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, read_wait_seconds=3.0)


async def test_reads_wait_for_the_write_they_name(
    running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    search = running.runner("search")
    await search.stop()
    body = await gql(client, UPSERT, {"input": STOOL}, token=tokens.mint("admin-1", ["admin"]))
    position = body["data"]["productUpsert"]["position"]
    assert position is not None
    blind = await gql(client, READ, {"at": None})
    assert blind["data"]["product"] is None and blind["data"]["products"]["totalCount"] == 0
    assert blind["data"]["products"]["freshness"]["lagEvents"] >= 1

    reader = asyncio.create_task(gql(client, READ, {"at": position}))
    await asyncio.sleep(0.2)  # a window in which a read that ignored the position would answer
    assert not reader.done(), "the read waits for the projector"
    search.start()
    seen = await reader
    assert seen["data"]["product"] == {"title": "Cedar stool"}
    assert seen["data"]["variant"] == {"sku": "STOOL-1"}
    assert seen["data"]["products"]["totalCount"] == 1


async def test_a_position_that_never_arrives_is_a_stale_read(client: httpx.AsyncClient) -> None:
    body = await gql(
        client, "query($at: Position) { products(consistentWith: $at) { totalCount } }", {"at": "999999"}
    )
    assert error_codes(body) == ["STALE_READ"]
