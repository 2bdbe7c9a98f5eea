"""Costs over HTTP: realistic estimates, the actual cost charged in full, refusals charged a
minimum, the cheap limits before validation, and one Redis round trip per request."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from redis.asyncio import Redis

from gateway.bootstrap.container import Container
from gateway.bootstrap.seed import demo_catalog, seed_catalog
from gateway.edge.auth import JwtAuthenticator
from gateway.edge.budget import CostBudget
from gateway.edge.settings import EdgeSettings
from tests.support.catalog import product, upsert, variant
from tests.support.edge import FakeClock, codes, edge_http, post
from tests.support.waiting import eventually

DEFAULTS = EdgeSettings()
SEARCH = """
query Search($q: String) {
  products(query: $q, first: 20) {
    totalCount
    pageInfo { hasNextPage endCursor }
    facets { brands { value count } categories { value count } prices { from to count } }
    edges {
      cursor
      node {
        id handle title brand
        priceRange { min { amount currencyCode } max { amount } }
        variants { sku title price { amount } }
      }
    }
  }
}
"""


class CountingRedis(Redis):
    """A Redis client that counts the commands it sends (wraps the driver, not our code)."""

    commands: list[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]).upper())
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


def counting_budget(container: Container, clock: FakeClock) -> CountingRedis:
    redis = CountingRedis(connection_pool=container.redis.connection_pool)
    redis.commands = []
    services = container.services.edge
    services.budget = CostBudget(redis, container.settings.redis_prefix, clock=clock)
    return redis


def cost_of(body: dict[str, Any]) -> dict[str, Any]:
    cost: dict[str, Any] = body["extensions"]["cost"]
    return cost


async def _wait_for_products(http: httpx.AsyncClient, admin: dict[str, str], count: int) -> None:
    async def indexed() -> bool:
        body = (await post(http, {"query": "{ products { totalCount } }"}, headers=admin)).json()
        return bool(body.get("data")) and body["data"]["products"]["totalCount"] >= count

    await eventually(indexed, timeout=20)


async def test_a_product_with_100_variants_is_charged_for_all_of_them(
    running: Container, tokens: JwtAuthenticator
) -> None:
    variants = [variant(f"BIG-{i:03d}", "5.00") for i in range(100)]
    result = await upsert(running, product("big-one", variants=variants))
    clock = FakeClock()
    redis = counting_budget(running, clock)
    query = {
        "query": 'query($p: Position) { product(handle: "big-one", consistentWith: $p) '
        "{ variants { sku } } }",
        "variables": {"p": str(result.position)},
    }
    async with edge_http(running) as http:
        warm = await post(http, {"query": "{ __typename }"})  # loads the script into Redis
        assert cost_of(warm.json())["throttleStatus"]["currentlyAvailable"] == DEFAULTS.budget_capacity
        redis.commands.clear()
        body = (await post(http, query)).json()
        assert len(body["data"]["product"]["variants"]) == 100
        cost = cost_of(body)
        assert cost["requestedQueryCost"] == 1 + 3  # the product and three variants, realistically
        assert cost["actualQueryCost"] == 1 + 100
        # Charged in full: the excess over the estimate is gone from the bucket.
        assert cost["throttleStatus"]["currentlyAvailable"] == DEFAULTS.budget_capacity - 101
        after = (await post(http, {"query": "{ __typename }"})).json()
        assert cost_of(after)["throttleStatus"]["currentlyAvailable"] == DEFAULTS.budget_capacity - 101
        # One round trip per request: the excess rode along with the next request's charge.
        assert redis.commands == ["EVALSHA", "EVALSHA"]


async def test_refusals_are_charged_a_minimum_and_ride_on_the_lease_of_the_first(
    running: Container, tokens: JwtAuthenticator
) -> None:
    clock = FakeClock()
    redis = counting_budget(running, clock)
    async with edge_http(running, max_aliases=2) as http:
        await post(http, {"query": "{ __typename }"})
        redis.commands.clear()
        capacity, minimum = DEFAULTS.budget_capacity, DEFAULTS.rejected_cost
        refusals = [
            {"query": "{ nope }"},  # validation
            {"query": "{ products("},  # syntax
            {"query": "{ a: nope b: nope c: nope }"},  # the alias limit, checked before validation
            # Admitted at its estimate, then refused as a whole before anything ran.
            {"query": "query($n: Int!) { products(first: $n) { totalCount } }", "variables": {"n": "x"}},
        ]
        bodies = [(await post(http, payload)).json() for payload in refusals]
        assert [codes(b) for b in bodies] == [
            ["GRAPHQL_VALIDATION_FAILED"],
            ["GRAPHQL_PARSE_FAILED"],
            ["OPERATION_LIMIT_EXCEEDED"],
            ["BAD_USER_INPUT"],
        ]
        assert "data" not in bodies[-1]
        for i, body in enumerate(bodies, start=1):
            assert cost_of(body)["actualQueryCost"] == minimum
            assert cost_of(body)["throttleStatus"]["currentlyAvailable"] == capacity - i * minimum
        bad_key = await post(http, {"query": "{ __typename }"}, headers={"x-api-key": "cgk_unknown"})
        assert bad_key.status_code == 401
        # The first refusal's round trip took a lease (the bucket is nearly full): the others,
        # and the bad key's, were charged from it in this process.
        assert redis.commands == ["EVALSHA"]


async def test_a_search_page_estimate_is_close_to_what_it_returns(
    running: Container, tokens: JwtAuthenticator
) -> None:
    await seed_catalog(running, demo_catalog(60, seed=7))
    admin = {"authorization": f"Bearer {tokens.mint('admin-1', ['admin'])}"}
    async with edge_http(running) as http:
        await _wait_for_products(http, admin, 60)
        body = (await post(http, {"query": SEARCH})).json()
        assert len(body["data"]["products"]["edges"]) == 20
        cost = cost_of(body)
        # Before: 732 estimated for about 250 returned (every list assumed to hold 10).
        assert abs(cost["requestedQueryCost"] - cost["actualQueryCost"]) <= 0.25 * cost["actualQueryCost"]
        assert cost["requestedQueryCost"] < 400


async def test_search_as_you_type_is_never_throttled_at_the_defaults(
    running: Container, tokens: JwtAuthenticator
) -> None:
    await seed_catalog(running, demo_catalog(80, seed=11))
    admin = {"authorization": f"Bearer {tokens.mint('admin-1', ['admin'])}"}
    clock = FakeClock()
    counting_budget(running, clock)
    async with edge_http(running) as http:
        await _wait_for_products(http, admin, 80)
        spent = 0
        for _ in range(10):  # ten searches in three seconds, each a full page with variants and facets
            response = await post(http, {"query": SEARCH})
            assert response.status_code == 200, response.json()
            body = response.json()
            assert "errors" not in body and len(body["data"]["products"]["edges"]) == 20
            spent += cost_of(body)["actualQueryCost"]
            clock.now += 0.3
        assert spent > 2_000  # the case: about 470 each was refused after the third


async def test_an_admin_editing_the_catalog_is_not_throttled_at_the_defaults(
    running: Container, tokens: JwtAuthenticator
) -> None:
    clock = FakeClock()  # frozen: nothing leaks back while the admin works
    counting_budget(running, clock)
    admin = {"authorization": f"Bearer {tokens.mint('admin-1', ['admin'])}"}
    mutation = """
    mutation($input: ProductUpsertInput!) {
      productUpsert(input: $input) {
        position userErrors { field message code }
        product { id handle variants { sku price { amount } } }
      }
    }
    """
    async with edge_http(running) as http:
        for i in range(200):
            variables = {
                "input": {
                    "handle": f"edited-{i}",
                    "title": f"Edited {i}",
                    "variants": [{"sku": f"ED-{i}-{k}", "title": str(k), "price": "9.99"} for k in range(3)],
                }
            }
            response = await post(http, {"query": mutation, "variables": variables}, headers=admin)
            assert response.status_code == 200, response.json()
            assert response.json()["data"]["productUpsert"]["userErrors"] == []
        status = cost_of(response.json())["throttleStatus"]
        assert status["maximumAvailable"] == DEFAULTS.admin_budget_capacity
        assert Decimal(status["currentlyAvailable"]) > 0


async def test_a_mutation_refused_to_its_caller_costs_a_refusal_not_a_mutation(
    running: Container, tokens: JwtAuthenticator
) -> None:
    clock = FakeClock()
    counting_budget(running, clock)
    mutation = """
    mutation($input: ProductUpsertInput!) {
      productUpsert(input: $input) { position userErrors { code } product { id } }
    }
    """
    variant_input = {"sku": "REFUSED-1", "title": "One", "price": "9.99"}
    variables = {"input": {"handle": "refused-one", "title": "Refused", "variants": [variant_input]}}
    customer = {"authorization": f"Bearer {tokens.mint('cust-refused', ['customer'])}"}
    admin = {"authorization": f"Bearer {tokens.mint('admin-refused', ['admin'])}"}
    async with edge_http(running) as http:
        refused = (await post(http, {"query": mutation, "variables": variables}, headers=customer)).json()
        assert codes(refused) == ["FORBIDDEN"]
        cost = cost_of(refused)
        assert cost["actualQueryCost"] == DEFAULTS.rejected_cost
        left = DEFAULTS.budget_capacity - DEFAULTS.rejected_cost
        assert cost["throttleStatus"]["currentlyAvailable"] == left
        # The same mutation run by someone allowed to costs a mutation's weight.
        ran = (await post(http, {"query": mutation, "variables": variables}, headers=admin)).json()
        assert ran["data"]["productUpsert"]["userErrors"] == []
        assert cost_of(ran)["actualQueryCost"] > DEFAULTS.rejected_cost


async def test_a_query_with_refused_fields_is_charged_what_it_returned(running: Container) -> None:
    clock = FakeClock()
    counting_budget(running, clock)
    plain = {"query": "{ products(first: 1) { totalCount } }"}
    refused = {"query": "{ products(first: 1) { totalCount } a: myCart { id } b: myCart { id } }"}
    async with edge_http(running) as http:
        alone = cost_of((await post(http, plain)).json())["actualQueryCost"]
        body = (await post(http, refused)).json()
        assert codes(body) == ["UNAUTHENTICATED", "UNAUTHENTICATED"]
        # Refused fields of a query return nothing and weigh nothing: no discount on the rest.
        assert cost_of(body)["actualQueryCost"] == alone > 0


async def test_an_answer_without_data_costs_a_refusal(running: Container) -> None:
    clock = FakeClock()
    counting_budget(running, clock)
    async with edge_http(running) as http:
        # Refused by a resolver for its arguments: nothing returned, the refusal's minimum charged.
        body = (await post(http, {"query": "{ products(first: -1) { totalCount } }"})).json()
        assert codes(body) == ["BAD_USER_INPUT"] and body["data"] is None
        assert cost_of(body)["actualQueryCost"] == DEFAULTS.rejected_cost
        assert (
            cost_of(body)["throttleStatus"]["currentlyAvailable"]
            == DEFAULTS.budget_capacity - DEFAULTS.rejected_cost
        )


async def test_an_answer_whose_every_field_failed_costs_a_refusal(running: Container) -> None:
    clock = FakeClock()
    counting_budget(running, clock)
    async with edge_http(running) as http:
        # The fields are nullable, so the answer has data, all of it null (as a read that waited
        # out its consistentWith bound): nothing returned, the refusal's minimum charged.
        body = (await post(http, {"query": "{ a: myCart { id } b: myCart { id } }"})).json()
        assert codes(body) == ["UNAUTHENTICATED", "UNAUTHENTICATED"]
        assert body["data"] == {"a": None, "b": None}
        assert cost_of(body)["actualQueryCost"] == DEFAULTS.rejected_cost
