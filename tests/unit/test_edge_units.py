"""Pure parts of the edge: limits analysis, static cost, negotiation, manifests, settings."""

from __future__ import annotations

import json

import pytest
from graphql import get_introspection_query, get_operation_ast, parse

from gateway.edge.cost import CostModel, KnownCosts, actual_cost, static_cost
from gateway.edge.document_cache import DocumentCache
from gateway.edge.errors import GatewayError
from gateway.edge.limits import OperationLimits, Shape, analyse
from gateway.edge.persisted import parse_manifest, sha256_hex
from gateway.edge.settings import EdgeSettings
from gateway.edge.ttl_cache import TtlCache
from gateway.http.app import build_schema
from gateway.http.protocol import GRAPHQL_RESPONSE, JSON, decode_json, encode_json, negotiate

SCHEMA = build_schema()._schema
MODEL = CostModel(max_cost=1000, default_list_size=10, mutation_cost=10)
WIDE = OperationLimits(max_depth=100, max_aliases=100, max_root_fields=100)


def shape(query: str, limits: OperationLimits = WIDE) -> Shape:
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    return analyse(document, operation, limits)


def cost(query: str, variables: dict[str, object] | None = None) -> int:
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    return static_cost(SCHEMA, document, operation, variables, MODEL)


def test_shape_counts_through_inline_and_named_fragments() -> None:
    query = """
    { a: __typename ...Root ... on Query { b: __schema { types { name } } } }
    fragment Root on Query { c: __schema { queryType { ...T } } }
    fragment T on __Type { fields { type { name } } }
    """
    assert shape(query) == Shape(depth=5, aliases=3, root_fields=3)


def test_fragment_cycles_and_exponential_spreads_terminate() -> None:
    cyclic = "{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }"
    assert shape(cyclic) == Shape(depth=1, aliases=0, root_fields=1)
    # Each fragment spreads the next twice: 2**30 executions, measured once each.
    chain = "".join(f" fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30))
    result = shape("{ ...F0 }" + chain + " fragment F30 on Query { x: __typename }")
    assert result.aliases == 2**30 and result.root_fields == 2**30


def test_depth_bails_out_early_even_inside_fragments() -> None:
    deep = "{ ...D } fragment D on Query { __schema { types { fields { type { name } } } } }"
    with pytest.raises(GatewayError) as exceeded:
        shape(deep, OperationLimits(max_depth=4, max_aliases=9, max_root_fields=9))
    assert exceeded.value.code == "OPERATION_LIMIT_EXCEEDED"
    assert exceeded.value.extensions == {"limit": "depth", "maximum": 4}


def test_static_cost_of_connections_lists_and_mutations() -> None:
    assert cost("{ __typename }") == 0
    # products connection + 5 x (edge + node + 10 variants x (variant + price)) + pageInfo
    products = (
        "{ products(first: 5) { edges { node { variants { price { amount } } } } pageInfo { hasNextPage } } }"
    )
    assert cost(products) == 1 + 5 * (1 + 1 + 10 * 2) + 1
    by_variable = "query($n: Int) { products(first: $n) { edges { node { title } } } }"
    assert cost(by_variable, {"n": 3}) == 1 + 3 * 2
    assert cost(by_variable, {}) == 1 + 20 * 2  # the schema's default
    assert cost("query($n: Int = 2) { products(first: $n) { edges { node { title } } } }") == 1 + 2 * 2
    fragment = (
        "{ products(first: 4) { ...C } } fragment C on ProductSearchConnection { edges { node { id } } }"
    )
    assert cost(fragment) == 1 + 4 * 2
    assert cost(
        'mutation { cartCreate { userErrors { message } } cartAttachCustomer(cartId: "c") { position } }'
    ) == (10 + 1 + 10 + 10 + 1)
    assert cost(get_introspection_query()) < 100


def test_known_costs_answer_what_a_fresh_computation_does_for_every_value_of_first() -> None:
    query = (
        "query($n: Int, $m: Int = 3, $q: String) { products(first: $n, query: $q) "
        "{ edges { node { variants { sku } } } } orders(first: $m) { edges { node { number } } } }"
    )
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    known = KnownCosts()
    cases: list[dict[str, object]] = [
        {"n": 3},
        {"n": 7, "q": "boots"},
        {"n": 3, "q": "a different text: the same cost, from memory"},
        {"n": 3, "m": 50},
        {},
        {"n": [1, 2]},  # not a number: computed (and refused later by validation), not kept
    ]
    for variables in cases * 2:
        for worst_case in (False, True):
            fresh = static_cost(SCHEMA, document, operation, variables, MODEL, worst_case=worst_case)
            remembered = static_cost(
                SCHEMA, document, operation, variables, MODEL, worst_case=worst_case, known=known
            )
            assert remembered == fresh
    # Only the variables ``first`` reads are part of the key: the search text is not.
    assert known.variables == ("m", "n")
    assert len(known.costs) == 2 * 4


def test_a_value_that_only_equals_a_number_does_not_share_its_known_cost() -> None:
    query = "query($n: Int) { products(first: $n) { edges { node { variants { sku } } } } }"
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    known = KnownCosts()
    # 1.0 and True are equal to 1 (and hash alike) but are no Int to the cost: they take the default.
    for odd in ({"n": 1.0}, {"n": True}):
        assert static_cost(SCHEMA, document, operation, odd, MODEL, known=known) == static_cost(
            SCHEMA, document, operation, odd, MODEL
        )
    one = static_cost(SCHEMA, document, operation, {"n": 1}, MODEL, known=known)
    assert one == static_cost(SCHEMA, document, operation, {"n": 1}, MODEL) == 1 + 1 * (1 + 1 + 10)
    assert list(known.costs) == [(False, 1)]


def test_actual_cost_counts_returned_objects() -> None:
    data = {"products": {"edges": [{"node": {"id": "1"}}, {"node": {"id": "2"}}], "totalCount": 2}}
    assert actual_cost(data, 0, MODEL) == 1 + 2 * 2
    assert actual_cost(None, 1, MODEL) == 10
    nested = {"a": [[{"b": None}, {"b": {"c": [1, 2]}}], [], None], "s": "text", "n": [1, [2]]}
    assert actual_cost(nested, 0, MODEL) == 3
    assert actual_cost({"__schema": {"types": [{}, {}]}, "x": {}}, 2, MODEL, {"__schema": 7}) == 7 + 1 + 20


def test_token_limit_is_exact_and_documents_are_cached() -> None:
    cache = DocumentCache(SCHEMA, production=False, max_tokens=3, size=3)
    ok = "{ __typename }"
    assert cache.prepare(ok, sha256_hex(ok)).runnable
    over = "query { __typename }"
    (error,) = cache.prepare(over, sha256_hex(over)).errors
    assert isinstance(error.original_error, GatewayError)
    assert error.original_error.extensions["limit"] == "tokens"
    (syntax,) = cache.prepare("{", sha256_hex("{")).errors
    assert syntax.extensions == {"code": "GRAPHQL_PARSE_FAILED"}
    assert cache.prepare(ok, sha256_hex(ok)) is cache.prepare(ok, sha256_hex(ok))
    assert cache.misses == 3


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"application/json;q=1, {GRAPHQL_RESPONSE};q=0.8", JSON),
        ("text/html", None),
        ("application/json;q=0", None),
    ],
)
def test_negotiation(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_manifest_formats() -> None:
    body = "{ __typename }"
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": sha256_hex(body), "body": body, "name": "T", "type": "query"}],
    }
    (entry,) = parse_manifest(apollo)
    assert (entry.id, entry.body, entry.name, entry.type) == (sha256_hex(body), body, "T", "query")
    (relay,) = parse_manifest({"abc123": body})
    assert (relay.id, relay.body) == ("abc123", body)
    hashed = sha256_hex(body)
    assert [e.id for e in parse_manifest({hashed: body, f"sha256:{hashed.upper()}": body})] == [
        hashed,
        f"sha256:{hashed.upper()}",
    ]
    # An id that says it is a SHA-256 must be its body's; a bare one is as opaque as any other.
    assert [e.id for e in parse_manifest({"1" * 64: body})] == ["1" * 64]
    for lying in (f"sha256:{'1' * 64}", f"sha256:{'A' * 64}"):
        with pytest.raises(ValueError, match="not the SHA-256 of its body"):
            parse_manifest({lying: body})
    bad_manifests: list[object] = [[], {"format": "apollo-persisted-query-manifest"}, {"a": 1}, {}]
    for bad in bad_manifests:
        with pytest.raises(ValueError):
            parse_manifest(bad)


def test_edge_settings_from_env() -> None:
    settings = EdgeSettings.from_env({"GRAPHQL_MAX_DEPTH": "7", "GRAPHQL_BUDGET_RESTORE_RATE": "2.5"})
    assert settings.max_depth == 7 and settings.budget_restore_rate == 2.5
    assert settings.max_batch_size == 0 and settings.max_cost == 1000
    with pytest.raises(ValueError, match="GRAPHQL_MAX_COST"):
        EdgeSettings.from_env({"GRAPHQL_MAX_COST": "lots"})


def test_ttl_cache_expires_and_evicts() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(2, 10.0, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert cache.get("a") == (False, None) and cache.get("c") == (True, 3)
    now[0] = 10.0
    assert cache.get("c") == (False, None)


def test_responses_are_compact_json_and_a_lone_surrogate_is_escaped_not_an_error() -> None:
    body = {"data": {"title": "Café", "n": 1, "ok": True, "none": None}, "extensions": {"x": [1.5]}}
    encoded = encode_json(body)
    assert json.loads(encoded) == body
    assert b" " not in encoded.replace(b"Caf", b"")
    echoed = {"errors": [{"message": "unknown sku \ud800"}]}
    assert json.loads(encode_json(echoed)) == echoed


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"q": "a\\ud800"}', "lone UTF-16 surrogate"),
        ('{"q": "\\udfff"}', "lone UTF-16 surrogate"),
        ('{"q": "\\\\ud800", "b": [}', "malformed"),  # a backslash, then text: not a surrogate
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ("[1e400]", "out of range"),
    ],
)
def test_request_json_is_refused_with_its_reason(raw: str, reason: str) -> None:
    with pytest.raises(GatewayError) as refused:
        decode_json(raw, "The request body")
    assert refused.value.message.startswith("The request body is not valid JSON: ")
    assert reason in refused.value.message


def test_request_json_keeps_surrogate_pairs_big_numbers_and_the_last_duplicate_key() -> None:
    assert decode_json(
        '{"e": "\\ud83d\\ude00", "n": 123456789012345678901234567890, "k": 1, "k": 2}', "x"
    ) == {
        "e": "\U0001f600",
        "n": 123456789012345678901234567890,
        "k": 2,
    }
