"""Cache policies of GraphQL answers over HTTP: public catalog, private carts, orders and
signed-in callers, no-store for staff data, mutations, POSTs and unsettled read-your-writes."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx
import pytest

from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import Settings
from gateway.edge.auth import JwtAuthenticator
from tests.helpers import error_codes, gql
from tests.support.http_cache import ACCEPT, apollo_get, directives, persisted_params, sha256

SEARCH = "query Search($q: String) { products(query: $q, first: 5) { totalCount edges { node { title } } } }"
PRODUCT = "query Product($h: String!) { product(handle: $h) { title variants { availability { inStock } } } }"
CART = "query Cart($id: ID!) { cart(id: $id) { id totalQuantity } }"
ORDERS = "query Orders { orders { edges { node { id } } } }"
TIMELINE = "query Timeline($c: ID!) { customerTimeline(customerId: $c) { edges { node { kind } } } }"
AT = "query At($at: Position) { products(consistentWith: $at) { totalCount } }"
UPSERT = "mutation Upsert($input: ProductUpsertInput!) { productUpsert(input: $input) { position } }"
CREATE_CART = "mutation { cartCreate { cart { id } position } }"
VARY = {"accept", "authorization", "x-api-key"}


def lamp(title: str = "Brass lamp") -> dict[str, object]:
    return {
        "handle": "brass-lamp",
        "title": title,
        "currencyCode": "USD",
        "variants": [{"sku": "LAMP-1", "title": "Brass", "price": "30.00"}],
    }


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, read_wait_seconds=1.0)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_catalog_reads_are_public_with_a_validator_and_vary(client: httpx.AsyncClient) -> None:
    # Stock hints (inventory) are served stale for a shorter while than the rest of the catalog.
    for query, variables, stale in ((SEARCH, {"q": "lamp"}, "30"), (PRODUCT, {"h": "brass-lamp"}, "10")):
        response = await apollo_get(client, query, variables)
        assert response.status_code == 200, response.text
        assert directives(response) == {"public": "", "max-age": "5", "stale-while-revalidate": stale}
        assert response.headers["etag"].startswith('W/"')
        assert {v.strip().lower() for v in response.headers["vary"].split(",")} == VARY


async def test_carts_orders_and_signed_in_callers_are_never_public(
    client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    created = await gql(client, CREATE_CART)
    cart_id = created["data"]["cartCreate"]["cart"]["id"]
    guest_cart = await apollo_get(client, CART, {"id": cart_id})
    assert guest_cart.json()["data"]["cart"]["id"] == cart_id
    assert directives(guest_cart) == {"private": "", "max-age": "0"}

    customer = bearer(tokens.mint("cust-1", ["customer"]))
    orders = await apollo_get(client, ORDERS, headers=customer)
    assert orders.json()["data"]["orders"]["edges"] == []
    assert "private" in directives(orders) and "public" not in directives(orders)
    # The catalog itself, asked by a signed-in person, is that person's answer.
    catalog = await apollo_get(client, SEARCH, {"q": "lamp"}, headers=customer)
    assert directives(catalog) == {"private": "", "max-age": "5"}
    assert catalog.headers["etag"] != (await apollo_get(client, SEARCH, {"q": "lamp"})).headers["etag"]

    support = bearer(tokens.mint("agent-1", ["support"]))
    timeline = await apollo_get(client, TIMELINE, {"c": "cust-1"}, headers=support)
    assert "errors" not in timeline.json()
    assert directives(timeline) == {"no-store": ""} and "etag" not in timeline.headers


async def test_mutations_over_get_stay_405_and_posts_are_never_cacheable(client: httpx.AsyncClient) -> None:
    over_get = await client.get(
        "/graphql", params=persisted_params(CREATE_CART, with_query=True), headers={"accept": ACCEPT}
    )
    assert over_get.status_code == 405
    assert directives(over_get) == {"no-store": ""}

    registered = await apollo_get(client, SEARCH, {"q": "lamp"})
    assert registered.status_code == 200 and "etag" in registered.headers
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256(SEARCH)}}
    posted = await client.post(
        "/graphql",
        json={"extensions": extensions, "variables": {"q": "lamp"}},
        headers={"accept": ACCEPT, "if-none-match": registered.headers["etag"]},
    )
    assert posted.status_code == 200 and posted.json()["data"]["products"]["totalCount"] == 0
    assert directives(posted) == {"no-store": ""} and "etag" not in posted.headers
    # A plain (not persisted) GET names no stored document: not cacheable either.
    plain = await client.get("/graphql", params={"query": "{ __typename }"}, headers={"accept": ACCEPT})
    assert plain.status_code == 200 and directives(plain) == {"no-store": ""}


async def test_consistent_with_is_cacheable_only_when_already_covered(
    running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    admin = tokens.mint("admin-1", ["admin"])
    search = running.runner("search")
    await search.stop()
    written = await gql(client, UPSERT, {"input": lamp()}, token=admin)
    position = written["data"]["productUpsert"]["position"]

    waiting = asyncio.create_task(apollo_get(client, AT, {"at": position}))
    await asyncio.sleep(0.2)
    assert not waiting.done(), "the read waits for the projector"
    search.start()
    waited = await waiting
    assert waited.json()["data"]["products"]["totalCount"] == 1
    assert directives(waited) == {"no-store": ""} and "etag" not in waited.headers

    covered = await apollo_get(client, AT, {"at": position})
    assert covered.json()["data"]["products"]["totalCount"] == 1
    assert "public" in directives(covered) and "etag" in covered.headers

    ahead = await client.get(
        "/graphql",
        params={**persisted_params(AT), "variables": json.dumps({"at": str(int(position) + 1000)})},
        headers={"accept": "application/json"},
    )
    assert error_codes(ahead.json()) == ["STALE_READ"]
    assert directives(ahead) == {"no-store": ""}
