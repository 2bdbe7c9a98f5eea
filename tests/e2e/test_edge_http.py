"""GraphQL over HTTP per the spec: methods, content types, Accept, CSRF, production mode."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.bootstrap.container import Container
from tests.support.edge import GRAPHQL_RESPONSE, codes, edge_http, post

TYPENAME = {"query": "{ __typename }"}


@pytest.fixture
async def http(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_http(container) as client:
        yield client


@pytest.fixture
async def prod(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_http(container, production=True) as client:
        yield client


# ------------------------------------------------------------------ Accept


async def test_accept_picks_the_response_media_type_or_406(http: httpx.AsyncClient) -> None:
    for accept, media in [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/json; charset=utf-8", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", "application/json"),
        ("text/html, */*;q=0.1", "application/json"),
    ]:
        response = await post(http, TYPENAME, accept=accept)
        assert response.status_code == 200, accept
        assert response.headers["content-type"].split(";")[0] == media, accept
        assert response.json()["data"] == {"__typename": "Query"}
    for accept in ["text/html", "application/xml", f"{GRAPHQL_RESPONSE};q=0"]:
        response = await post(http, TYPENAME, accept=accept)
        assert response.status_code == 406, accept
        assert codes(response.json()) == ["NOT_ACCEPTABLE"]


async def test_parse_and_validation_errors_are_400_with_the_graphql_response_type(
    http: httpx.AsyncClient,
) -> None:
    for query, code in [("{ __typename", "GRAPHQL_PARSE_FAILED"), ("{ nope }", "GRAPHQL_VALIDATION_FAILED")]:
        modern = await post(http, {"query": query}, accept=GRAPHQL_RESPONSE)
        assert modern.status_code == 400
        assert codes(modern.json()) == [code]
        assert "data" not in modern.json()
        legacy = await post(http, {"query": query}, accept="application/json")
        assert legacy.status_code == 200
        assert codes(legacy.json()) == [code]


async def test_variable_coercion_failure_is_a_request_error(http: httpx.AsyncClient) -> None:
    payload = {
        "query": "query($s: ProductSort) { products(sort: $s) { totalCount } }",
        "variables": {"s": 42},
    }
    modern = await post(http, payload, accept=GRAPHQL_RESPONSE)
    assert modern.status_code == 400 and "data" not in modern.json()
    assert codes(modern.json()) == ["BAD_USER_INPUT"]
    assert (await post(http, payload)).status_code == 200


async def test_execution_errors_are_200_with_data(
    http: httpx.AsyncClient,
) -> None:
    # An anonymous caller reaches the resolver, which refuses: a field error, not a request error.
    response = await post(http, {"query": "{ projections { name } }"}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 200
    body = response.json()
    assert "data" in body and codes(body) == ["UNAUTHENTICATED"]


# ------------------------------------------------------------------ methods


async def test_get_runs_queries_in_both_media_types(http: httpx.AsyncClient) -> None:
    for accept in (GRAPHQL_RESPONSE, "application/json"):
        response = await http.get("/graphql", params={"query": "{ __typename }"}, headers={"accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(accept)


async def test_get_never_runs_mutations(http: httpx.AsyncClient) -> None:
    query = 'mutation { projectionRebuild(name: "search") { userErrors { message } } }'
    response = await http.get("/graphql", params={"query": query})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert (await http.head("/graphql", params={"query": query})).status_code == 405


async def test_other_methods_are_405(http: httpx.AsyncClient) -> None:
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
        response = await http.request(method, "/graphql", json=TYPENAME)
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET, POST"
        # In the shape of every other refusal: a coded GraphQL error, as JSON.
        assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_get_without_query_is_400(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"accept": GRAPHQL_RESPONSE})
    assert response.status_code == 400


# ------------------------------------------------------------------ content types and CSRF


async def test_simple_content_types_are_blocked_as_csrf(http: httpx.AsyncClient) -> None:
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ]:
        response = await http.post(
            "/graphql", content=b'{"query":"{ __typename }"}', headers={"content-type": content_type}
        )
        assert response.status_code == 400, content_type
        assert "Cross-Site Request Forgery" in response.json()["errors"][0]["message"]


async def test_post_without_content_type_is_rejected(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", content=b'{"query":"{ __typename }"}')
    assert response.status_code == 400
    preflighted = await http.post(
        "/graphql", content=b'{"query":"{ __typename }"}', headers={"apollo-require-preflight": "true"}
    )
    assert preflighted.status_code == 415


async def test_preflight_header_lifts_csrf_but_the_body_must_still_be_json(http: httpx.AsyncClient) -> None:
    for header in ["X-Apollo-Operation-Name", "Apollo-Require-Preflight", "GraphQL-Require-Preflight"]:
        response = await http.post(
            "/graphql",
            content=b'{"query":"{ __typename }"}',
            headers={"content-type": "text/plain", header: "1"},
        )
        assert response.status_code == 415, header
        assert codes(response.json()) == ["UNSUPPORTED_MEDIA_TYPE"]


async def test_unsupported_post_content_type_is_415(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", content=b"<q/>", headers={"content-type": "application/xml"})
    assert response.status_code == 415


async def test_get_with_a_simple_content_type_needs_a_preflight_header(http: httpx.AsyncClient) -> None:
    params = {"query": "{ __typename }"}
    blocked = await http.get("/graphql", params=params, headers={"content-type": "text/plain"})
    assert blocked.status_code == 400
    allowed = await http.get(
        "/graphql", params=params, headers={"content-type": "text/plain", "x-apollo-operation-name": "T"}
    )
    assert allowed.status_code == 200


async def test_malformed_requests_are_400(http: httpx.AsyncClient) -> None:
    for content, message in [
        (b"{not json", "not valid JSON"),
        # No store can take a lone surrogate: refused whole, in variables as in the query text.
        (
            rb'{"query": "query($q: String) { products(query: $q) { totalCount } }", '
            rb'"variables": {"q": "a\ud800"}}',
            "lone UTF-16 surrogate",
        ),
        (rb'{"query": "{ products(query: \"x\udfff\") { totalCount } }"}', "lone UTF-16 surrogate"),
        (b'"a string"', "JSON object"),
        (b"[]", "empty batch"),
        (b'{"query": "{ __typename }", "variables": [1]}', "'variables'"),
        (b'{"query": 7}', "'query'"),
        (b'{"query": "query A { __typename } query B { __typename }"}', "operation name"),
    ]:
        response = await http.post("/graphql", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 400, content
        assert message in response.json()["errors"][0]["message"]


# ------------------------------------------------------------------ production mode


async def test_production_refuses_introspection(prod: httpx.AsyncClient) -> None:
    response = await post(prod, {"query": "{ __schema { types { name } } }"}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert set(codes(response.json())) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "introspection has been disabled" in response.json()["errors"][0]["message"]
    typed = await post(prod, {"query": '{ __type(name: "Query") { name } }'})
    assert set(codes(typed.json())) == {"GRAPHQL_VALIDATION_FAILED"}
    assert (await post(prod, TYPENAME)).json()["data"] == {"__typename": "Query"}


async def test_production_errors_never_suggest_schema_names(
    http: httpx.AsyncClient, prod: httpx.AsyncClient
) -> None:
    requests = [
        {"query": "{ projection { name } }"},
        {"query": "{ products(sortt: PRICE_ASC) { totalCount } }"},
        {
            "query": "query($s: ProductSort) { products(sort: $s) { totalCount } }",
            "variables": {"s": "PRICE_AS"},
        },
    ]
    for payload in requests:
        developer = (await post(http, payload)).text
        assert "Did you mean" in developer, payload
        production = (await post(prod, payload)).json()
        assert production["errors"], payload
        assert "Did you mean" not in str(production), payload


async def test_production_has_no_graphiql(http: httpx.AsyncClient, prod: httpx.AsyncClient) -> None:
    page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "<html" in page.text.lower()
    refused = await prod.get("/graphql", headers={"accept": "text/html"})
    assert "<html" not in refused.text.lower()
    assert refused.status_code in {400, 406}
