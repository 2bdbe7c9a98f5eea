"""The graphql-http audit's MAY items: invalid request parameters are 400 with application/json too."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.bootstrap.container import Container
from tests.support.edge import GRAPHQL_RESPONSE, codes, edge_http


@pytest.fixture
async def http(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_http(container) as client:
        yield client


@pytest.mark.parametrize("accept", [None, "application/json", "*/*", GRAPHQL_RESPONSE])
async def test_invalid_parameters_are_400(http: httpx.AsyncClient, accept: str | None) -> None:
    headers = {"content-type": "application/json"} | ({"accept": accept} if accept else {})
    for body in [
        {"qeury": "{ __typename }"},  # audit 3E3A / 8764
        {"notquery": "{ __typename }"},  # audit 423L
        {},
        {"query": None},
        {"variables": {"a": 1}},
        {"extensions": {"other": 1}},
    ]:
        response = await http.post("/graphql", json=body, headers=headers)
        assert response.status_code == 400, (body, accept)
        assert codes(response.json()) == ["BAD_REQUEST"]


async def test_persisted_and_plain_requests_still_run(http: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json", "accept": "application/json"}
    ok = await http.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert ok.status_code == 200 and ok.json()["data"] == {"__typename": "Query"}
    digest = "0" * 64
    miss = await http.post(
        "/graphql",
        json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}},
        headers=headers,
    )
    assert miss.status_code == 200 and codes(miss.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_variable_error_names_the_field_without_echoing_the_input(http: httpx.AsyncClient) -> None:
    address = {
        "name": "Ada",
        "line1": "7 Private Lane",
        "city": "London",
        "postalCode": "N1",
        "countryCode": "GB",
    }
    query = "mutation($input: CheckoutInput!) { checkoutComplete(input: $input) { position } }"
    missing_email = {
        "cartId": "c1",
        "idempotencyKey": "k1",
        "shippingAddress": address,
        "payment": {"token": "t"},
    }
    response = await http.post("/graphql", json={"query": query, "variables": {"input": missing_email}})
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "required field 'email'" in error["message"]
    assert "Private Lane" not in response.text and error["message"].endswith("'email'.")
    # A null where the field is required says GraphQL's null, not graphql-core's Python None.
    null_email = missing_email | {"email": None}
    response = await http.post("/graphql", json={"query": query, "variables": {"input": null_email}})
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not to be null" in error["message"] and "None" not in error["message"], error["message"]
