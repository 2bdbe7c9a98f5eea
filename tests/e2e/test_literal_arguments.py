"""A bad argument value written inline in the document (a literal) is BAD_USER_INPUT naming the
argument and its field, for every kind of scalar: positions, decimals, cursors, ids, enums, sizes.

Literal values fail validation at the value itself; values a resolver refuses carry the
argument they are about. Both read ``Argument "first" of field "products": ...`` over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from tests.support.edge import edge_http

# (document, argument, field, text the message must also hold)
LITERALS = [
    # positions
    ('{ products(consistentWith: "abc") { __typename } }', "consistentWith", "products", "Position"),
    (
        '{ product(handle: "x", consistentWith: "99999999999999999999999") { id } }',
        "consistentWith",
        "product",
        "Position",
    ),
    ('{ variant(sku: "x", consistentWith: -1) { sku } }', "consistentWith", "variant", "out of range"),
    # decimals (inside an input object: the field inside it is named too)
    ('{ products(filter: {minPrice: "1e309"}) { __typename } }', "filter", "products", "filter.minPrice"),
    ("{ products(filter: {maxPrice: true}) { __typename } }", "filter", "products", "filter.maxPrice"),
    # cursors (refused by the resolver)
    ('{ products(after: "garbage") { __typename } }', "after", "products", "cursor"),
    (
        '{ customerTimeline(customerId: "c-1", after: "garbage") { __typename } }',
        "after",
        "customerTimeline",
        "cursor",
    ),
    ('{ orders(customerId: "c-1", after: "garbage") { __typename } }', "after", "orders", "cursor"),
    # ids
    ("{ product(id: 12.5) { id } }", "id", "product", "ID cannot represent"),
    ("{ cart(id: true) { id } }", "id", "cart", "ID cannot represent"),
    (
        'mutation { cartLinesRemove(cartId: "c", lineIds: ["a", 1.5]) { __typename } }',
        "lineIds",
        "cartLinesRemove",
        "lineIds[1]",
    ),
    # enums
    ("{ products(sort: CHEAPEST) { __typename } }", "sort", "products", "ProductSort"),
    ('{ orders(customerId: "c-1", status: "PAID") { __typename } }', "status", "orders", "OrderStatus"),
    (
        '{ customerTimeline(customerId: "c-1", kinds: [ORDER, NOPE]) { __typename } }',
        "kinds",
        "customerTimeline",
        "kinds[1]",
    ),
    # sizes
    ("{ products(first: -5) { __typename } }", "first", "products", "between"),
    ("{ products(first: 99999999999) { __typename } }", "first", "products", "32-bit"),
    ('{ products(first: "ten") { __typename } }', "first", "products", "Int"),
    ('{ orders(customerId: "c-1", first: 0) { __typename } }', "first", "orders", "between"),
    (
        '{ customerTimeline(customerId: "c-1", first: 100000) { __typename } }',
        "first",
        "customerTimeline",
        "",
    ),
    # a directive's argument
    ('{ products @include(if: "yes") { __typename } }', "if", "@include", "Boolean"),
]


@pytest.fixture
async def http(running: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_http(running) as client:
        yield client


@pytest.fixture
def admin(tokens: JwtAuthenticator) -> dict[str, str]:
    return {"authorization": f"Bearer {tokens.mint('admin-1', ['admin'])}", "accept": "application/json"}


async def _errors(http: httpx.AsyncClient, headers: dict[str, str], query: str, **variables: Any) -> Any:
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code < 500, response.text
    return response.json()["errors"]


@pytest.mark.parametrize(("query", "argument", "field", "detail"), LITERALS)
async def test_a_bad_literal_names_its_argument(
    http: httpx.AsyncClient, admin: dict[str, str], query: str, argument: str, field: str, detail: str
) -> None:
    errors = await _errors(http, admin, query)
    assert len(errors) == 1, errors
    error = errors[0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    owner = f'directive "{field}"' if field.startswith("@") else f'field "{field}"'
    assert error["message"].startswith(f'Argument "{argument}" of {owner}'), error
    assert detail in error["message"], error
    assert error["extensions"]["argument"] == argument
    assert error["locations"], error


async def test_a_bad_default_value_names_its_variable(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    query = 'query($p: Position = "soon") { products(consistentWith: $p) { __typename } }'
    (error,) = await _errors(http, admin, query)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith('Default value of variable "$p"'), error


async def test_other_document_errors_keep_their_codes(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    unknown_field = await _errors(http, admin, "{ products { nope } }")
    assert [e["extensions"]["code"] for e in unknown_field] == ["GRAPHQL_VALIDATION_FAILED"]
    unknown_argument = await _errors(http, admin, "{ products(nope: 1) { __typename } }")
    assert [e["extensions"]["code"] for e in unknown_argument] == ["GRAPHQL_VALIDATION_FAILED"]
    # A bad variable value already names its variable: left as it was.
    (variable,) = await _errors(
        http, admin, "query($p: Position) { products(consistentWith: $p) { __typename } }", p="-3"
    )
    assert variable["extensions"]["code"] == "BAD_USER_INPUT" and "$p" in variable["message"]
    assert not variable["message"].startswith("Argument")


async def test_the_argument_is_named_in_production_too(running: Container, tokens: JwtAuthenticator) -> None:
    headers = {"authorization": f"Bearer {tokens.mint('admin-1', ['admin'])}", "accept": "application/json"}
    async with edge_http(running, production=True) as http:
        (error,) = await _errors(http, headers, '{ products(sort: "RELEVANCE") { __typename } }')
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith('Argument "sort" of field "products"'), error
    assert "Did you mean" not in error["message"]
