"""Catalog over GraphQL/HTTP: productUpsert, product/variant/node lookups, products search,
batching (no N+1) and projectionRebuild."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.bootstrap.container import Container
from gateway.bootstrap.seed import demo_catalog, seed_catalog
from gateway.bootstrap.settings import Settings
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_app
from tests.helpers import error_codes, gql
from tests.support.catalog import CallCounter, product, upsert, variant

UPSERT = """
mutation($input: ProductUpsertInput!) {
  productUpsert(input: $input) {
    position
    userErrors { field message code }
    product {
      id handle title brand categories
      priceRange { min { amount currencyCode } max { amount } }
      variants { id sku title price { amount currencyCode } }
    }
  }
}
"""
LOOKUPS = """
query($id: ID!, $handle: String!, $sku: String!, $variantId: ID!) {
  byId: product(id: $id) { handle }
  byHandle: product(handle: $handle) { id variants { sku } }
  variant(sku: $sku) {
    id title product { handle }
    availability { inStock available freshness { projection lagEvents } }
  }
  productNode: node(id: $id) { id ... on Product { handle } }
  variantNode: node(id: $variantId) { id ... on ProductVariant { sku } }
}
"""
SEARCH = """
query($query: String, $filter: ProductFilter, $sort: ProductSort, $first: Int, $after: String) {
  products(query: $query, filter: $filter, sort: $sort, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    freshness { projection lagEvents }
    facets { brands { value count } prices { from to count } }
    edges { cursor node { id handle variants { sku product { id } availability { inStock } } } }
  }
}
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # This module tests batching: fifty products with variants, and many aliased lookups, are above
    # the default static-cost and root-field caps.
    return settings.with_overrides(
        edge=settings.edge.with_overrides(
            max_cost=100_000, budget_capacity=10_000_000, max_root_fields=50, max_aliases=50
        )
    )


def shoe(**changes: Any) -> dict[str, Any]:
    return {
        "handle": "trail-shoe",
        "title": "Trail Shoe",
        "brand": "Northwind",
        "categories": ["Shoes"],
        "variants": [
            {"sku": "TS-9", "title": "Size 9", "price": "99.90"},
            {"sku": "TS-10", "title": "Size 10", "price": "109.90"},
        ],
        **changes,
    }


async def test_upsert_requires_the_admin_role(client: httpx.AsyncClient, tokens: JwtAuthenticator) -> None:
    anonymous = await gql(client, UPSERT, {"input": shoe()})
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    customer = await gql(client, UPSERT, {"input": shoe()}, token=tokens.mint("cust-1", ["customer"]))
    assert error_codes(customer) == ["FORBIDDEN"]


async def test_upsert_reads_its_own_write_and_lookups_resolve(
    client: httpx.AsyncClient, tokens: JwtAuthenticator, running: Container
) -> None:
    admin = tokens.mint("admin-1", ["admin"])
    body = await gql(client, UPSERT, {"input": shoe()}, token=admin)
    payload = body["data"]["productUpsert"]
    assert payload["userErrors"] == [] and payload["position"] is not None
    product = payload["product"]
    assert product["id"].startswith("gid://commerce/Product/") and product["brand"] == "Northwind"
    assert product["priceRange"] == {
        "min": {"amount": "99.90", "currencyCode": "USD"},
        "max": {"amount": "109.90"},
    }
    assert [v["id"] for v in product["variants"]] == [
        "gid://commerce/ProductVariant/TS-9",
        "gid://commerce/ProductVariant/TS-10",
    ]

    again = (await gql(client, UPSERT, {"input": shoe()}, token=admin))["data"]["productUpsert"]
    assert again["position"] is None and again["product"] == product

    # Withdraw TS-9: it leaves the product and variant(sku) at once (read-your-writes).
    less = shoe(variants=[{"sku": "TS-10", "title": "Size 10", "price": "109.90"}])
    withdrawn = (await gql(client, UPSERT, {"input": less}, token=admin))["data"]["productUpsert"]
    assert [v["sku"] for v in withdrawn["product"]["variants"]] == ["TS-10"]

    variables = {
        "id": product["id"],
        "handle": "trail-shoe",
        "sku": "TS-10",
        "variantId": product["variants"][1]["id"],
    }
    data = (await gql(client, LOOKUPS, variables))["data"]
    assert data["byId"] == {"handle": "trail-shoe"}
    assert data["byHandle"] == {"id": product["id"], "variants": [{"sku": "TS-10"}]}
    assert data["variant"]["product"] == {"handle": "trail-shoe"}
    # An untracked SKU: in stock, no count (whichever read model answers the hint).
    availability = data["variant"]["availability"]
    assert (availability["inStock"], availability["available"]) == (True, None)
    assert availability["freshness"]["lagEvents"] == 0
    assert data["productNode"] == {"id": product["id"], "handle": "trail-shoe"}
    assert data["variantNode"]["sku"] == "TS-10"
    gone = (await gql(client, '{ variant(sku: "TS-9") { sku } }'))["data"]
    assert gone == {"variant": None}


async def test_invalid_input_comes_back_as_user_errors_and_writes_nothing(
    client: httpx.AsyncClient, tokens: JwtAuthenticator, running: Container
) -> None:
    bad = shoe(
        handle="Trail Shoe",
        variants=[
            {"sku": "TS-9", "title": "Size 9", "price": "99.90"},
            {"sku": "TS-10", "title": "Size 10", "price": "1.001"},
        ],
    )
    body = await gql(client, UPSERT, {"input": bad}, token=tokens.mint("admin-1", ["admin"]))
    payload = body["data"]["productUpsert"]
    assert payload["product"] is None and payload["position"] is None
    assert {(tuple(e["field"]), e["code"]) for e in payload["userErrors"]} == {
        (("input", "handle"), "INVALID_INPUT"),
        (("input", "variants", "1", "price"), "INVALID_INPUT"),
    }
    async with running.engine.connect() as conn:
        counts = (
            await conn.execute(
                text("SELECT (SELECT count(*) FROM ledger_events), (SELECT count(*) FROM catalog_products)")
            )
        ).one()
    assert tuple(counts) == (0, 0)


async def test_fifty_products_with_variants_cost_one_search_call(
    client: httpx.AsyncClient, running: Container
) -> None:
    commands = demo_catalog(60, seed=11)
    await seed_catalog(running, commands)
    async with running.engine.connect() as conn:
        head = (await conn.execute(text("SELECT max(position) FROM ledger_events"))).scalar_one()
    await running.freshness.wait_for("search", head, timeout=10)

    counter = CallCounter(running.search)
    try:
        body = await gql(client, SEARCH, {"first": 50, "sort": "TITLE_ASC"})
        search_calls = list(counter.paths)
        skus = [v.sku for c in commands[:12] for v in c.variants][:12]
        counter.paths.clear()
        aliased = " ".join(
            f'v{i}: variant(sku: "{sku}") {{ sku product {{ handle }} }}' for i, sku in enumerate(skus)
        )
        by_sku = await gql(client, "{ " + aliased + " }")
        sku_calls = list(counter.paths)
    finally:
        counter.close()

    page = body["data"]["products"]
    assert len(page["edges"]) == 50 and page["totalCount"] == 60 and page["pageInfo"]["hasNextPage"]
    assert all(v["product"]["id"] == e["node"]["id"] for e in page["edges"] for v in e["node"]["variants"])
    assert sum(len(e["node"]["variants"]) for e in page["edges"]) > 50
    assert search_calls == [f"POST /{running.settings.index_prefix}products/_search"]
    assert "errors" not in by_sku and len(by_sku["data"]) == len(skus)
    assert len(sku_calls) == 1


async def test_products_reports_lag_until_the_projector_applies(container: Container) -> None:
    transport = httpx.ASGITransport(app=build_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        runner = container.runner("search")
        await runner.catch_up()
        await upsert(container, product("rain-jacket", "Rain Jacket"))
        stale = (await gql(http, SEARCH, {"query": "rain jacket"}))["data"]["products"]
        assert (stale["totalCount"], stale["freshness"]) == (0, {"projection": "search", "lagEvents": 1})
        await runner.catch_up()
        fresh = (await gql(http, SEARCH, {"query": "rain jacket"}))["data"]["products"]
        assert (fresh["totalCount"], fresh["freshness"]) == (1, {"projection": "search", "lagEvents": 0})


async def test_catalog_reads_before_the_search_index_exists_are_empty_and_say_so(
    container: Container,
) -> None:
    # The search projector creates its index when it first runs, in the background: a gateway
    # answering before then (a loaded start, a separate projector worker not yet up) reads an
    # empty model and reports its lag, instead of failing on the missing index.
    await upsert(container, product("rain-jacket", "Rain Jacket", [variant("RJ-1")]))
    transport = httpx.ASGITransport(app=build_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        searched = await gql(http, SEARCH, {"query": "rain jacket"})
        looked_up = await gql(http, '{ product(handle: "rain-jacket") { id } variant(sku: "RJ-1") { sku } }')
    assert "errors" not in searched and "errors" not in looked_up, (searched, looked_up)
    page = searched["data"]["products"]
    assert (page["totalCount"], page["edges"], page["pageInfo"]["hasNextPage"]) == (0, [], False)
    assert page["freshness"] == {"projection": "search", "lagEvents": 1}
    assert [bucket["count"] for bucket in page["facets"]["prices"]] == [0] * 7
    assert page["facets"]["brands"] == []
    assert looked_up["data"] == {"product": None, "variant": None}


async def test_products_argument_errors_are_bad_user_input(client: httpx.AsyncClient) -> None:
    for variables in ({"first": 0}, {"first": 101}, {"after": "bogus"}):
        assert error_codes(await gql(client, SEARCH, variables)) == ["BAD_USER_INPUT"], variables


async def test_product_lookup_needs_exactly_one_of_id_and_handle(client: httpx.AsyncClient) -> None:
    for query, argument in (
        ("{ product { id } }", "id"),
        ('{ product(id: "gid://commerce/Product/x", handle: "x") { id } }', "handle"),
    ):
        error = (await gql(client, query))["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", query
        assert error["extensions"]["argument"] == argument, query
        assert error["message"].endswith("give exactly one of id and handle"), error["message"]


async def test_projection_rebuild(
    client: httpx.AsyncClient, tokens: JwtAuthenticator, running: Container
) -> None:
    mutation = """mutation($name: String!) {
      a: projectionRebuild(name: $name) { projection { name store state } userErrors { field code message } }
      b: projectionRebuild(name: $name) { projection { name } userErrors { field code message } }
    }"""
    customer = await gql(client, mutation, {"name": "search"}, token=tokens.mint("c-1", ["customer"]))
    assert set(error_codes(customer)) == {"FORBIDDEN"}
    admin = tokens.mint("admin-1", ["admin"])
    unknown = (await gql(client, mutation, {"name": "nope"}, token=admin))["data"]["a"]
    assert unknown["projection"] is None and unknown["userErrors"][0]["code"] == "NOT_FOUND"

    await seed_catalog(running, demo_catalog(100, seed=5))
    data = (await gql(client, mutation, {"name": "search"}, token=admin))["data"]
    assert data["a"] == {
        "projection": {"name": "search", "store": "elasticsearch", "state": "REBUILDING"},
        "userErrors": [],
    }
    assert data["b"]["projection"] is None
    assert data["b"]["userErrors"][0]["code"] == "INVALID_INPUT"
    assert "already running" in data["b"]["userErrors"][0]["message"]

    await running.rebuilder.tasks["search"]
    alias = f"{running.settings.index_prefix}products"
    indices = list((await running.search.indices.get_alias(name=alias)).body)
    assert len(indices) == 1 and not indices[0].endswith("_v1")
    after = (await gql(client, SEARCH, {"first": 1}))["data"]["products"]
    assert after["totalCount"] == 100
