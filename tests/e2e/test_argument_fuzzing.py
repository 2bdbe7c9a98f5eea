"""Property-based: no argument value of any root field makes the gateway answer INTERNAL_SERVER_ERROR.

For every Query and Mutation field, Hypothesis draws its arguments from the
schema's types (valid-looking and hostile values alike: huge and negative
numbers, "1e309", malformed ids and cursors, wrong JSON types) and sends them
over HTTP as an admin, so the resolvers run as deep as they can: as variables,
or written inline in the document as literals (then an error the document's
validation finds must be BAD_USER_INPUT naming the argument).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    get_named_type,
    is_leaf_type,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_schema
from tests.support.edge import edge_http

EXAMPLES_PER_FIELD = 8
# Fields whose work is not input handling: rebuilding a projection replays the whole ledger.
SKIPPED = frozenset({"projectionRebuild"})

ODD_NUMBERS = st.sampled_from(
    ["1e309", "-1e309", "NaN", "Infinity", "-0", "1e-400", "9" * 40, "0x10", "", " ", "1_000", "٣"]
)
ODD_TEXT = st.sampled_from(
    ["", " ", "\x00", "gid://commerce/Cart/", "gid://commerce/Order/../../x", "%", "é" * 300, "\ud7ff"]
)
ANY_JSON = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
INTEGERS = st.one_of(
    st.integers(min_value=-5, max_value=120),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, -(2**63)]),
)


def _scalar(scalar: GraphQLScalarType) -> st.SearchStrategy[Any]:
    name = scalar.name
    if name == "Int":
        return INTEGERS
    if name == "Float":
        return st.one_of(st.floats(allow_nan=False, allow_infinity=False), INTEGERS)
    if name == "Boolean":
        return st.booleans()
    if name == "Position":
        return st.one_of(INTEGERS, INTEGERS.map(str), ODD_NUMBERS, st.text(max_size=10))
    if name == "Decimal":
        return st.one_of(
            st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
            ODD_NUMBERS,
            INTEGERS,
        )
    if name == "ID":
        kinds = st.sampled_from(["Product", "ProductVariant", "Cart", "Order", "Nope"])
        return st.one_of(
            st.builds(lambda kind, key: f"gid://commerce/{kind}/{key}", kinds, st.text(max_size=40)),
            ODD_TEXT,
            st.text(max_size=60),
        )
    if name == "String":
        return st.one_of(st.text(max_size=40), ODD_TEXT, st.text(min_size=300, max_size=2000))
    return st.one_of(st.text(max_size=40), ODD_NUMBERS, ANY_JSON)


def _value(kind: GraphQLInputType, depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly the type's own shape; sometimes any JSON at all (wrong types must be refused cleanly)."""
    if isinstance(kind, GraphQLNonNull):
        return _shaped(kind.of_type, depth)
    return st.one_of(st.none(), _shaped(kind, depth))


def _shaped(kind: GraphQLInputType, depth: int) -> st.SearchStrategy[Any]:
    if isinstance(kind, GraphQLNonNull):
        return _shaped(kind.of_type, depth)
    if isinstance(kind, GraphQLList):
        return st.lists(_value(kind.of_type, depth + 1), max_size=3)
    if isinstance(kind, GraphQLEnumType):
        return st.one_of(st.sampled_from(list(kind.values)), st.text(max_size=12))
    if isinstance(kind, GraphQLScalarType):
        return st.one_of(_scalar(kind), ANY_JSON) if depth < 3 else _scalar(kind)
    assert isinstance(kind, GraphQLInputObjectType)
    fields = {name: _value(field.type, depth + 1) for name, field in kind.fields.items()}
    return st.fixed_dictionaries({}, optional=fields)


def _document(operation: str, name: str, field: GraphQLField) -> str:
    arguments: dict[str, GraphQLArgument] = field.args
    declared = ", ".join(f"${arg}: {spec.type}" for arg, spec in arguments.items())
    passed = ", ".join(f"{arg}: ${arg}" for arg in arguments)
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    header = f"{operation} Fuzz({declared})" if declared else f"{operation} Fuzz"
    call = f"{name}({passed})" if passed else name
    return f"{header} {{ {call}{selection} }}"


_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def _literal(value: Any, kind: GraphQLInputType) -> str:
    """``value`` written as a GraphQL literal for an argument of type ``kind`` (a wrong shape
    is written as it is: the document is then refused by validation, which is the point)."""
    if isinstance(kind, GraphQLNonNull):
        return _literal(value, kind.of_type)
    if isinstance(kind, GraphQLList) and isinstance(value, list):
        return "[" + ", ".join(_literal(item, kind.of_type) for item in value) + "]"
    if isinstance(kind, GraphQLInputObjectType) and isinstance(value, dict):
        fields = kind.fields
        return (
            "{"
            + ", ".join(
                f"{key}: {_literal(item, fields[key].type) if key in fields else _untyped(item)}"
                for key, item in value.items()
                if _NAME.match(key)
            )
            + "}"
        )
    if isinstance(kind, GraphQLEnumType) and isinstance(value, str) and _NAME.match(value):
        return value if value not in ("true", "false", "null") else json.dumps(value)
    return _untyped(value)


def _untyped(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_untyped(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_untyped(v)}" for k, v in value.items() if _NAME.match(k)) + "}"
    return json.dumps(str(value))


def _literal_document(operation: str, name: str, field: GraphQLField, values: dict[str, Any]) -> str:
    passed = ", ".join(f"{arg}: {_literal(values[arg], spec.type)}" for arg, spec in field.args.items())
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    call = f"{name}({passed})" if passed else name
    return f"{operation} Fuzz {{ {call}{selection} }}"


def _root_fields() -> list[tuple[str, str, GraphQLField]]:
    schema = build_schema()._schema
    roots = [("query", schema.query_type), ("mutation", schema.mutation_type)]
    return [
        (operation, name, field)
        for operation, root in roots
        if root is not None
        for name, field in root.fields.items()
        if name not in SKIPPED
    ]


@pytest.fixture
async def admin_http(running: Container) -> AsyncIterator[httpx.AsyncClient]:
    unlimited: dict[str, Any] = {
        "admin_budget_capacity": 10**9,
        "admin_budget_restore_rate": 10.0**6,
        "max_cost": 10**9,
    }
    async with edge_http(running, **unlimited) as http:
        yield http


async def test_no_argument_value_is_an_internal_error(
    admin_http: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    loop = asyncio.get_running_loop()
    headers = {
        "authorization": f"Bearer {tokens.mint('fuzz-admin', ['admin'])}",
        "accept": "application/json",
    }
    fields = _root_fields()
    assert len(fields) > 20

    async def send(query: str, variables: dict[str, Any]) -> httpx.Response:
        return await admin_http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )

    def fuzz(operation: str, name: str, field: GraphQLField) -> None:
        query = _document(operation, name, field)
        variables = st.fixed_dictionaries({arg: _value(spec.type) for arg, spec in field.args.items()})

        @settings(
            max_examples=EXAMPLES_PER_FIELD,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(variables, st.booleans())
        def case(values: dict[str, Any], inline: bool) -> None:
            if inline:
                request = send(_literal_document(operation, name, field, values), {})
            else:
                request = send(query, values)
            response = asyncio.run_coroutine_threadsafe(request, loop).result(timeout=60)
            assert response.status_code < 500, (name, values, response.text[:500])
            body = response.json()
            errors = body.get("errors", [])
            codes = [e.get("extensions", {}).get("code") for e in errors]
            assert "INTERNAL_SERVER_ERROR" not in codes, (name, values, body)
            if inline:
                assert "GRAPHQL_PARSE_FAILED" not in codes, (name, values, body)
                # Found by validation (located, no path): a bad literal, named.
                for error in errors:
                    if error.get("locations") and "path" not in error:
                        assert error["extensions"]["code"] == "BAD_USER_INPUT", (name, values, error)
                        assert error["message"].startswith("Argument "), (name, values, error)

        case()

    # Hypothesis drives each field from a worker thread; requests run on this test's event loop.
    for operation, name, field in fields:
        await asyncio.to_thread(fuzz, operation, name, field)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ('{ product(handle: "x", consistentWith: "99999999999999999999999") { id } }', {}),
        ('{ product(handle: "x", consistentWith: "-1") { id } }', {}),
        ('{ variant(sku: "x", consistentWith: "18446744073709551616") { sku } }', {}),
        ('query($p: Position) { product(handle: "x", consistentWith: $p) { id } }', {"p": -1}),
        ('query($p: Position) { product(handle: "x", consistentWith: $p) { id } }', {"p": 2**64}),
        ('{ products(filter: {minPrice: "1e309"}) { totalCount } }', {}),
        ("query($f: ProductFilter) { products(filter: $f) { totalCount } }", {"f": {"maxPrice": "-1e309"}}),
        ("query($s: String!) { inventory(sku: $s) { sku } }", {"s": "A\x00B"}),
        ('{ inventory(sku: "A\\u0000B") { sku } }', {}),
    ],
)
async def test_odd_input_is_bad_user_input(
    admin_http: httpx.AsyncClient, tokens: JwtAuthenticator, query: str, variables: dict[str, Any]
) -> None:
    headers = {"authorization": f"Bearer {tokens.mint('a-1', ['admin'])}", "accept": "application/json"}
    response = await admin_http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    codes = [e["extensions"]["code"] for e in response.json()["errors"]]
    assert codes == ["BAD_USER_INPUT"], response.json()
