"""Every read model rebuilt while clients read and write: no read fails, no write is lost,
and the result equals a fresh fold of the ledger."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import Settings
from gateway.edge.auth import JwtAuthenticator
from tests.helpers import gql
from tests.support.order_ledger import append as append_order
from tests.support.orders import happy_path, new_order_id, placed

UPSERT = """mutation($input: ProductUpsertInput!) {
  productUpsert(input: $input) { position userErrors { message } } }"""
SET_STOCK = """mutation($sku: String!, $n: Int!, $key: String!) {
  inventorySet(sku: $sku, onHand: $n, idempotencyKey: $key) { position userErrors { message } } }"""
NEW_CART = """mutation($sku: String!) { cartCreate(input: {lines: [{sku: $sku, quantity: 1}]}) {
  position cart { id } userErrors { message } } }"""
REBUILD = """mutation($name: String!) {
  projectionRebuild(name: $name) { projection { state } userErrors { message } } }"""
READS = {
    "search": (
        '{ products(query: "tee", first: 100) { totalCount } }',
        lambda d: d["products"]["totalCount"],
    ),
    "carts": ("query($id: ID!) { cart(id: $id) { id version } }", lambda d: d["cart"]["id"]),
    "orders": ("query($id: ID!) { order(id: $id) { id status } }", lambda d: d["order"]["id"]),
    "timeline": (
        '{ customerTimeline(customerId: "cust-1", first: 200) { edges { cursor } } }',
        lambda d: len(d["customerTimeline"]["edges"]),
    ),
    "inventory": ('{ inventory(sku: "TEE-0") { onHand } }', lambda d: d["inventory"]["onHand"]),
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This test is about rebuilds, not budgets: give every caller room for a read loop."""
    return settings.with_overrides(
        edge=dataclasses.replace(settings.edge, budget_capacity=10**9, budget_restore_rate=10**6)
    )


class Traffic:
    def __init__(self, container: Container, client: httpx.AsyncClient, admin: str, customer: str) -> None:
        self.container, self.client, self.admin, self.customer = container, client, admin, customer
        self.counter = itertools.count()
        self.carts: list[str] = []
        self.orders: list[str] = []
        self.last_position = 0
        self.read_failures: list[Any] = []
        self.reads = 0

    async def write_round(self) -> None:
        n = next(self.counter)
        product = {
            "handle": f"tee-{n}",
            "title": f"Organic tee {n}",
            "currencyCode": "USD",
            "variants": [{"sku": f"TEE-{n}", "title": "One size", "price": "19.99"}],
        }
        results = [
            await gql(self.client, UPSERT, {"input": product}, token=self.admin),
            await gql(
                self.client, SET_STOCK, {"sku": f"TEE-{n}", "n": 10 + n, "key": f"k{n}"}, token=self.admin
            ),
            await gql(self.client, NEW_CART, {"sku": f"TEE-{n}"}, token=self.customer),
        ]
        for body in results:
            payload = next(iter(body["data"].values()))
            assert "errors" not in body and payload["userErrors"] == [], body
            self.last_position = max(self.last_position, int(payload["position"]))
        self.carts.append(results[2]["data"]["cartCreate"]["cart"]["id"])
        order_id = new_order_id()
        place = placed(order_id, "cust-1")
        recorded = await append_order(
            self.container.engine, order_id, place, *happy_path(order_id, place.total)[:3]
        )
        self.orders.append(f"gid://commerce/Order/{order_id}")
        self.last_position = max(self.last_position, recorded[-1].position)

    async def read_loop(self, name: str, stop: asyncio.Event) -> None:
        query, extract = READS[name]
        baseline: Any = None
        while not stop.is_set():
            variables = {"id": self.carts[0] if name == "carts" else self.orders[0]}
            body = await gql(self.client, query, variables, token=self.admin)
            self.reads += 1
            try:
                value = extract(body["data"])
            except (KeyError, TypeError):
                self.read_failures.append(body)
                continue
            if "errors" in body or value is None:
                self.read_failures.append(body)
            elif isinstance(value, int) and baseline is not None and value < baseline:
                self.read_failures.append(("partial result", value, baseline))
            if isinstance(value, int):
                baseline = value if baseline is None else max(baseline, value)
            await asyncio.sleep(0.01)  # the read rate of the traffic during the rebuild


async def _dump(container: Container, name: str) -> list[Any]:
    if name == "search":
        alias = f"{container.settings.index_prefix}products"
        await container.search.indices.refresh(index=alias)
        hits = (await container.search.search(index=alias, size=1000, query={"match_all": {}}))["hits"][
            "hits"
        ]
        for hit in hits:
            # A variant's stock_version is the projector's guard as of the document's last write:
            # a rebuild folds the newest stock at once, the live index writes only when a SKU
            # sells out or comes back. What search answers from (in_stock) must be the same.
            for variant in hit["_source"]["variants"]:
                del variant["stock_version"]
        return sorted(((h["_id"], h["_source"]) for h in hits), key=lambda pair: str(pair[0]))
    if name == "carts":
        return await container.mongo["carts"].find({}, sort=[("_id", 1)]).to_list(None)
    table, key = {
        "orders": ("order_view", "order_id"),
        "timeline": ("timeline_entries", "position"),
        "inventory": ("inventory_view", "sku"),
    }[name]
    async with container.engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]


async def _caught_up(container: Container, position: int) -> None:
    for runner in container.runners:
        await container.freshness.wait_for(runner.name, position, timeout=10)


@pytest.mark.parametrize("name", ["search", "carts", "orders", "timeline", "inventory"])
async def test_rebuild_under_read_and_write_traffic(
    name: str, running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    traffic = Traffic(running, client, tokens.mint("admin-1", ["admin"]), tokens.mint("cust-1", ["customer"]))
    for _ in range(12):  # enough history that the replay takes a while
        await traffic.write_round()
    await _caught_up(running, traffic.last_position)

    stop = asyncio.Event()
    reader = asyncio.create_task(traffic.read_loop(name, stop))
    started = await gql(client, REBUILD, {"name": name}, token=traffic.admin)
    assert started["data"]["projectionRebuild"]["projection"]["state"] == "REBUILDING", started
    refused = await gql(client, REBUILD, {"name": name}, token=traffic.admin)
    assert "already running" in refused["data"]["projectionRebuild"]["userErrors"][0]["message"]
    during = 0
    while not running.rebuilder.progress(name).done:  # type: ignore[union-attr]
        await traffic.write_round()
        during += 1
    assert during >= 1, "the rebuild must overlap write traffic"
    for _ in range(2):
        await traffic.write_round()
    stop.set()
    await reader
    assert running.rebuilder.progress(name).error is None  # type: ignore[union-attr]
    await _caught_up(running, traffic.last_position)

    assert traffic.reads > 0 and traffic.read_failures == []
    after_traffic = await _dump(running, name)
    await running.rebuilder.run(running.runner(name))  # a fresh fold, nothing else moving
    assert await _dump(running, name) == after_traffic
    written = next(traffic.counter)
    expected_rows = {"search": written, "carts": written, "orders": written, "inventory": written}
    if name in expected_rows:
        assert len(after_traffic) == expected_rows[name], "every write reached the rebuilt model"
