"""Operation limits at their boundaries, static cost, budgets and ``extensions.cost`` over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
from graphql import get_introspection_query
from prometheus_client import REGISTRY

from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from gateway.edge.settings import EdgeSettings
from tests.support.edge import GRAPHQL_RESPONSE, FakeClock, codes, edge_http, post, use_budget_clock


async def _limit_error(http: httpx.AsyncClient, query: str, **extra: Any) -> dict[str, Any]:
    response = await post(http, {"query": query, **extra}, accept=GRAPHQL_RESPONSE)
    body: dict[str, Any] = response.json()
    body["_status"] = response.status_code
    return body


async def _passes(http: httpx.AsyncClient, query: str) -> None:
    body = await _limit_error(http, query)
    assert body["_status"] == 200 and "errors" not in body, body


async def _fails(http: httpx.AsyncClient, query: str, limit: str) -> None:
    body = await _limit_error(http, query)
    assert body["_status"] == 400, body
    assert codes(body) == ["OPERATION_LIMIT_EXCEEDED"], body
    assert body["errors"][0]["extensions"]["limit"] == limit


def _rejections(reason: str) -> float:
    return REGISTRY.get_sample_value("commerce_rate_limit_rejections_total", {"reason": reason}) or 0.0


async def test_depth_at_the_limit_passes_and_one_over_fails(container: Container) -> None:
    before = _rejections("depth")
    async with edge_http(container, max_depth=3) as http:
        await _passes(http, "{ __schema { queryType { name } } }")
        await _fails(http, "{ __schema { queryType { fields { name } } } }", "depth")
    assert _rejections("depth") == before + 1


async def test_depth_hidden_in_fragments_is_caught(container: Container) -> None:
    async with edge_http(container, max_depth=3) as http:
        await _passes(
            http,
            "{ ...Root } fragment Root on Query { __schema { ... on __Schema { ...Q } } }"
            " fragment Q on __Schema { queryType { name } }",
        )
        await _fails(
            http,
            "{ ...Root } fragment Root on Query { __schema { ... on __Schema { ...Q } } }"
            " fragment Q on __Schema { queryType { fields { name } } }",
            "depth",
        )


async def test_aliases_at_the_limit_pass_and_one_over_fails(container: Container) -> None:
    async with edge_http(container, max_aliases=2) as http:
        await _passes(http, "{ a: __typename b: __typename }")
        await _fails(
            http, "{ a: __typename b: __typename ...F } fragment F on Query { c: __typename }", "aliases"
        )


async def test_root_fields_at_the_limit_pass_and_one_over_fails(container: Container) -> None:
    async with edge_http(container, max_root_fields=2) as http:
        await _passes(http, "{ __typename ... on Query { __typename } }")
        await _fails(
            http,
            "{ __typename ... on Query { __typename } ...F } fragment F on Query { __typename }",
            "rootFields",
        )


async def test_tokens_at_the_limit_pass_and_one_over_fails(container: Container) -> None:
    async with edge_http(container, max_tokens=3) as http:
        await _passes(http, "{ __typename } # comments are not tokens")
        await _fails(http, "query { __typename }", "tokens")


async def test_body_size_at_the_limit_passes_and_one_over_fails(container: Container) -> None:
    exact = json.dumps({"query": "{ __typename }"}).encode()
    async with edge_http(container, max_body_bytes=len(exact)) as http:
        headers = {"content-type": "application/json"}
        ok = await http.post("/graphql", content=exact, headers=headers)
        assert ok.status_code == 200
        over = await http.post("/graphql", content=exact + b" ", headers=headers)
        assert over.status_code == 413
        assert over.json()["errors"][0]["extensions"]["limit"] == "bodySize"
        long_get = await http.get("/graphql", params={"query": "{ __typename }" + " " * len(exact)})
        assert long_get.status_code == 413


async def test_batches_are_off_by_default_and_each_operation_counts_when_on(container: Container) -> None:
    one = {"query": "{ __typename }"}
    async with edge_http(container) as http:
        refused = await post(http, [one])
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["limit"] == "batchSize"
    async with edge_http(container, max_batch_size=2, max_aliases=1) as http:
        answered = await post(http, [one, {"query": "{ a: __typename b: __typename }"}])
        assert answered.status_code == 200
        first, second = answered.json()
        assert first["data"] == {"__typename": "Query"}
        assert first["extensions"]["cost"]["requestedQueryCost"] == 0
        assert codes(second) == ["OPERATION_LIMIT_EXCEEDED"]
        assert (await post(http, [one, one, one])).status_code == 400


async def test_introspection_is_limited_too(container: Container) -> None:
    async with edge_http(container) as http:
        await _passes(http, get_introspection_query())
        deep = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
        body = await _limit_error(http, deep)
        assert body["_status"] == 400
        assert "introspection depth" in body["errors"][0]["message"].lower()


async def test_cost_over_the_maximum_is_refused_with_the_cost(container: Container) -> None:
    query = "{ products(first: 5) { edges { node { title } } } }"  # 1 + 5 * (edge + node) = 11
    async with edge_http(container, max_cost=10) as http:
        body = await _limit_error(http, query)
        assert body["_status"] == 400
        assert codes(body) == ["QUERY_COST_EXCEEDED"]
        assert body["errors"][0]["extensions"]["cost"] == 11
        assert body["errors"][0]["extensions"]["maximumCost"] == 10
        # A refused document is charged the minimum.
        defaults = EdgeSettings()
        left = defaults.budget_capacity - defaults.rejected_cost
        assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == left
        # The list size comes from the variables, the variable's default, or the schema's default.
        for text, variables, cost in [
            ("query($n: Int) { products(first: $n) { edges { node { title } } } }", {"n": 5}, 11),
            ("query($n: Int = 6) { products(first: $n) { edges { node { title } } } }", {}, 13),
            ("{ products { edges { node { title } } } }", {}, 41),
        ]:
            refused = await _limit_error(http, text, variables=variables)
            assert refused["errors"][0]["extensions"]["cost"] == cost


async def test_every_response_reports_cost_and_throttle_status(
    container: Container, tokens: JwtAuthenticator
) -> None:
    support = {"authorization": f"Bearer {tokens.mint('agent-1', ['support'])}"}
    async with edge_http(container) as http:
        body = (await post(http, {"query": "{ projections { name } }"}, headers=support)).json()
        cost = body["extensions"]["cost"]
        assert cost["requestedQueryCost"] == 10
        assert cost["actualQueryCost"] == len(body["data"]["projections"])
        throttle = cost["throttleStatus"]
        defaults = EdgeSettings()
        capacity = defaults.support_budget_capacity
        assert throttle["maximumAvailable"] == capacity
        assert throttle["restoreRate"] == defaults.support_budget_restore_rate
        # What was not used went back to the bucket.
        assert throttle["currentlyAvailable"] >= capacity - 10 + (10 - cost["actualQueryCost"]) - 1
        for payload in (
            {"query": "{ nope }"},
            {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
        ):
            failed = (await post(http, payload)).json()
            assert failed["extensions"]["cost"]["requestedQueryCost"] == 0
            throttle = failed["extensions"]["cost"]["throttleStatus"]
            assert throttle["maximumAvailable"] == defaults.budget_capacity


async def test_budget_exhausts_and_restores_over_time(container: Container, tokens: JwtAuthenticator) -> None:
    clock = FakeClock()
    use_budget_clock(container, clock)
    query = {"query": "{ __schema { types { name } } }"}  # cost 2; more objects come back, nothing refunded
    token = {"authorization": f"Bearer {tokens.mint('cust-9', ['customer'])}"}
    async with edge_http(container, budget_capacity=5, budget_restore_rate=1.0) as http:
        for left in (3, 1):
            ok = (await post(http, query, headers=token)).json()
            assert ok["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == left
        before = _rejections("budget")
        limited = await post(http, query, headers=token, accept=GRAPHQL_RESPONSE)
        assert _rejections("budget") == before + 1
        assert limited.status_code == 429
        error = limited.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfterSeconds"] == 1.0
        # What the request needs against what is left: the budget need not be empty to refuse.
        assert error["message"] == (
            "The cost budget is short: this request costs 2, 1 of 5 are available now; retry in 1 s"
        )
        assert limited.headers["retry-after"] == "1"
        # Another caller has a bucket of its own.
        assert "errors" not in (await post(http, query)).json()
        clock.now += 0.5
        assert (await post(http, query, headers=token)).status_code == 429
        clock.now += 0.5
        restored = (await post(http, query, headers=token)).json()
        assert "errors" not in restored
        assert restored["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0


async def test_mutations_are_weighted(container: Container) -> None:
    # 10 for the mutation + the payload + 10 (default list size) user errors; anonymous, so it is
    # refused before it runs and costs what a refusal costs.
    query = 'mutation { projectionRebuild(name: "search") { userErrors { message } } }'
    async with edge_http(container, max_cost=30) as http:
        body = (await post(http, {"query": query})).json()
        assert codes(body) == ["UNAUTHENTICATED"]
        assert body["extensions"]["cost"]["requestedQueryCost"] == 21
        assert body["extensions"]["cost"]["actualQueryCost"] == EdgeSettings().rejected_cost
    async with edge_http(container, max_cost=30, mutation_cost=20) as http:
        assert codes((await post(http, {"query": query})).json()) == ["QUERY_COST_EXCEEDED"]
