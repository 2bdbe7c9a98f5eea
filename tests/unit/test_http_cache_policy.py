"""The pure parts of HTTP caching: policy merge, operation plans, ETags and cache headers."""

from __future__ import annotations

from graphql import GraphQLSchema, OperationDefinitionNode, parse
from starlette.responses import Response

from commands.events.catalog import PRODUCT_EVENT_TYPES
from commands.events.catalog_changes import CATALOG_CHANGES
from commands.events.inventory import INVENTORY_EVENT_TYPES
from gateway.edge.auth import ANONYMOUS, Principal
from gateway.edge.cache_policy import (
    CARTS,
    FIELD_HINTS,
    NO_STORE,
    ORDERS,
    SEARCH,
    TYPE_HINTS,
    CacheHint,
    CachePolicy,
    Scope,
    merge,
    plan_operation,
)
from gateway.edge.etag import cache_control, caller_key, derive_etag, matches
from gateway.edge.http_cache import CacheDecision
from gateway.edge.pipeline import Outcome
from gateway.edge.read_model_versions import RELEVANT_EVENTS
from gateway.http.app import build_schema
from gateway.http.conditional import add_cache_headers
from projections import pricing

SCHEMA: GraphQLSchema = build_schema()._schema
CUSTOMER = Principal(subject="cust-1", roles=frozenset({"customer"}))


def plan(
    text: str, variables: dict[str, object] | None = None
) -> tuple[CachePolicy, list[tuple[frozenset[str], int]]]:
    document = parse(text)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    result = plan_operation(SCHEMA, document, operation)
    return result.policy, result.positions_waited_for(variables)


def test_the_most_restrictive_hint_wins() -> None:
    public = CacheHint(Scope.PUBLIC, max_age=60, stale_while_revalidate=30, reads=frozenset({"a"}))
    shorter = CacheHint(Scope.PUBLIC, max_age=5, stale_while_revalidate=300, reads=frozenset({"b"}))
    assert merge([public, shorter]) == CachePolicy(Scope.PUBLIC, 5, 30, frozenset({"a", "b"}))
    private = CacheHint(Scope.PRIVATE, max_age=0)
    assert merge([public, private]) == CachePolicy(Scope.PRIVATE, 0, 0, frozenset({"a"}))
    assert merge([public, CacheHint(Scope.NO_STORE), private]) == NO_STORE


def test_a_signed_in_caller_makes_public_answers_private() -> None:
    policy = CachePolicy(Scope.PUBLIC, 5, 30, frozenset({SEARCH}))
    assert policy.for_caller(ANONYMOUS) is policy
    assert policy.for_caller(CUSTOMER) == CachePolicy(Scope.PRIVATE, 5, 0, frozenset({SEARCH}))
    assert NO_STORE.for_caller(CUSTOMER) is NO_STORE


def test_operation_plans_per_scope() -> None:
    catalog, _ = plan("{ products { edges { node { title variants { price { amount } } } } } }")
    assert catalog.scope is Scope.PUBLIC and catalog.reads == {SEARCH}
    with_stock, _ = plan('{ variant(sku: "A") { availability { inStock } } }')
    assert with_stock.reads == {SEARCH, "inventory"}
    # A cart or an order is never public, however it is reached (fragments included).
    cart, _ = plan('query { products { totalCount } ...C } fragment C on Query { cart(id: "x") { id } }')
    assert cart.scope is Scope.PRIVATE and CARTS in cart.reads and SEARCH in cart.reads
    order, _ = plan('{ node(id: "x") { ... on Order { id } } }')
    assert order.scope is Scope.PRIVATE and ORDERS in order.reads
    assert plan('{ order(id: "x") { id } }')[0].scope is Scope.PRIVATE
    for staff in ('{ customerTimeline(customerId: "c") { edges { cursor } } }', "{ projections { name } }"):
        assert plan(staff)[0] is NO_STORE
    assert plan("mutation { cartCreate { position } }")[0] is NO_STORE
    assert plan("{ __typename }")[0].scope is Scope.PUBLIC


def test_consistent_with_arguments_are_found_as_literals_and_variables() -> None:
    _, none = plan("query($at: Position) { products(consistentWith: $at) { totalCount } }", {"at": None})
    assert none == []
    _, named = plan("query($at: Position) { products(consistentWith: $at) { totalCount } }", {"at": "42"})
    assert named == [(frozenset({SEARCH}), 42)]
    _, literal = plan('{ myCart(consistentWith: "7") { id } }')
    assert literal == [(frozenset({CARTS, "pricing"}), 7)]


def test_every_query_field_has_a_decided_policy() -> None:
    assert SCHEMA.query_type is not None
    for name, definition in SCHEMA.query_type.fields.items():
        returned = definition.type
        while hasattr(returned, "of_type"):
            returned = returned.of_type
        decided = ("Query", name) in FIELD_HINTS or getattr(returned, "name", "") in TYPE_HINTS
        assert decided, f"Query.{name} has no cache hint (it would be no-store)"


def test_etags_change_with_each_input_and_compare_weakly() -> None:
    base: dict[str, object] = {
        "salt": "s",
        "document_sha256": "d",
        "operation_name": "Search",
        "variables": {"q": "lamp", "first": 5},
        "caller": "public",
        "versions": {SEARCH: (10, 4)},
    }
    etag = derive_etag(**base)  # type: ignore[arg-type]
    assert etag.startswith('W/"')
    reordered = {**base, "variables": {"first": 5, "q": "lamp"}}
    assert derive_etag(**reordered) == etag  # type: ignore[arg-type]
    for change in (
        {"document_sha256": "e"},
        {"variables": {"q": "lamp", "first": 6}},
        {"caller": caller_key(Scope.PRIVATE, CUSTOMER)},
        {"versions": {SEARCH: (11, 4)}},
        {"versions": {SEARCH: (10, 4), CARTS: (0, 0)}},
    ):
        assert derive_etag(**{**base, **change}) != etag  # type: ignore[arg-type]
    assert matches(etag, etag) and matches(f'"x", {etag.removeprefix("W/")}', etag) and matches("*", etag)
    assert not matches('W/"other"', etag) and not matches(None, etag)


def test_callers_of_private_answers_are_told_apart() -> None:
    assert caller_key(Scope.PUBLIC, CUSTOMER) == caller_key(Scope.PUBLIC, ANONYMOUS) == "public"
    keys = {
        caller_key(Scope.PRIVATE, principal)
        for principal in (
            ANONYMOUS,
            CUSTOMER,
            Principal(subject="cust-2", roles=frozenset({"customer"})),
            Principal(subject="cust-1", roles=frozenset({"support"})),
            Principal(client="partner"),
        )
    }
    assert len(keys) == 5


def test_cache_control_headers() -> None:
    assert cache_control(CachePolicy(Scope.PUBLIC, 5, 30, frozenset())) == (
        "public, max-age=5, stale-while-revalidate=30"
    )
    assert cache_control(CachePolicy(Scope.PRIVATE, 0, 0, frozenset())) == "private, max-age=0"
    assert cache_control(NO_STORE) == cache_control(None) == "no-store"


def test_read_model_relevance_matches_the_projectors() -> None:
    assert set(RELEVANT_EVENTS["pricing"].values) == pricing._STREAM_TYPES
    # Spelled as the partial index is, or PostgreSQL cannot use it for the search model's version.
    assert RELEVANT_EVENTS["search"].where == CATALOG_CHANGES
    assert set(RELEVANT_EVENTS["search"].values) == PRODUCT_EVENT_TYPES | INVENTORY_EVENT_TYPES  # its `wants`


def test_a_consistent_with_variable_that_is_not_a_position_waits_for_nothing() -> None:
    from gateway.edge.cache_policy import ConsistencyArgument

    argument = ConsistencyArgument(frozenset({"search"}), variable="at")
    assert argument.position({"at": "42"}) == 42
    assert argument.position({"at": 7}) == 7
    for bad in ("²", "-1", True, "1e3", None):
        assert argument.position({"at": bad}) is None
    assert ConsistencyArgument(frozenset(), literal=5).position(None) == 5


def test_an_answer_that_sets_a_cookie_loses_its_validator_with_its_cacheability() -> None:
    decision = CacheDecision(CachePolicy(Scope.PUBLIC, 60, 0, frozenset()), etag='W/"abc"')
    outcome = Outcome(body={"data": {}}, cache=decision)
    response = Response(content=b"{}", media_type="application/json")
    add_cache_headers(response, [outcome], method="GET")
    assert response.headers["etag"] == 'W/"abc"' and "public" in response.headers["cache-control"]
    # A resolver then sets a cookie: the view decides again, and nothing cacheable may remain.
    response.headers.append("set-cookie", "session=1; HttpOnly")
    add_cache_headers(response, [outcome], method="GET")
    assert response.headers["cache-control"] == "no-store"
    assert "etag" not in response.headers
