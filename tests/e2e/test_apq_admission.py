"""APQ stores a document only once the operation is admitted (limits, budget), and charges for it."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.bootstrap.container import Container
from gateway.edge.persisted import APQ_REGISTRATION_COST
from tests.support.edge import codes, edge_http, post, sha256


def _apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def _stored(container: Container, digest: str) -> bool:
    return await container.redis.get(f"{container.settings.redis_prefix}apq:{digest}") is not None


async def test_an_over_budget_caller_registers_nothing(container: Container) -> None:
    async with edge_http(container, budget_capacity=20, budget_restore_rate=0.001) as http:
        spend = "mutation Spend { cartCreate { cart { id } } }"
        for _ in range(10):
            if (await post(http, {"query": spend})).status_code == 429:
                break
        else:
            raise AssertionError("the budget never ran out")
        document = "query New { projections { name } }"
        refused = await post(http, {"query": document, "extensions": _apq(sha256(document))})
        assert refused.status_code == 429 and codes(refused.json()) == ["RATE_LIMITED"]
        assert not await _stored(container, sha256(document))


async def test_an_over_limit_document_registers_nothing(container: Container) -> None:
    async with edge_http(container, max_aliases=2) as http:
        document = "query Wide { a: __typename b: __typename c: __typename }"
        refused = await post(http, {"query": document, "extensions": _apq(sha256(document))})
        assert codes(refused.json()) == ["OPERATION_LIMIT_EXCEEDED"]
        assert not await _stored(container, sha256(document))


async def test_a_registration_is_charged(container: Container) -> None:
    async with edge_http(container, budget_capacity=1_000, budget_restore_rate=0.001) as http:
        document = "query Cheap { __typename }"

        shown: list[int | None] = []

        async def spent(payload: dict[str, Any]) -> int:
            body = (await post(http, {"query": "{ __typename }"})).json()
            before = int(body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"])
            body = (await post(http, payload)).json()
            assert "errors" not in body, body
            shown.append(body["extensions"]["cost"].get("persistedQueryRegistrationCost"))
            return before - int(body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"])

        plain = await spent({"query": document})
        registering = await spent({"query": document, "extensions": _apq(sha256(document))})
        assert await _stored(container, sha256(document))
        hit = await spent({"extensions": _apq(sha256(document))})
        # The same operation each time; only the registration adds its cost (±1 for restoration).
        assert abs(registering - plain - APQ_REGISTRATION_COST) <= 1
        assert abs(hit - plain) <= 1
        # The registration's points are named in the answer, apart from the operation's cost.
        assert shown == [None, APQ_REGISTRATION_COST, None]


async def test_a_registration_past_the_whole_bucket_is_a_cost_refusal(container: Container) -> None:
    # The operation fits the bucket; with the registration it never can, so no retry would help.
    capacity = APQ_REGISTRATION_COST - 1
    async with edge_http(container, budget_capacity=capacity, budget_restore_rate=100.0) as http:
        document = "query Fits { __typename }"
        refused = await post(http, {"query": document, "extensions": _apq(sha256(document))})
        assert codes(refused.json()) == ["QUERY_COST_EXCEEDED"], refused.json()
        assert refused.json()["errors"][0]["extensions"]["maximumCost"] == capacity
        assert not await _stored(container, sha256(document))
        await asyncio.sleep(0.2)  # the refusal's own cost restored (100 points a second)
        assert "errors" not in (await post(http, {"query": document})).json()


async def test_a_budget_that_does_not_refill_names_no_retry_time(container: Container) -> None:
    async with edge_http(container, budget_capacity=20, budget_restore_rate=0.0) as http:
        spend = "mutation Spend { cartCreate { cart { id } } }"
        for _ in range(10):
            refused = await post(http, {"query": spend})
            if refused.status_code == 429:
                break
        else:
            raise AssertionError("the budget never ran out")
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert "retryAfterSeconds" not in error["extensions"]
        assert error["message"].endswith("this budget does not refill")
        assert "retry-after" not in refused.headers
