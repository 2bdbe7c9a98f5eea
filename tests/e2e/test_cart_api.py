"""Carts over GraphQL/HTTP: read-your-writes, user errors, access rules, merge, store outage."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from tests.helpers import error_codes, gql
from tests.support.cart import seed_catalog

CART = """
fragment C on Cart {
  id customerId status currencyCode version totalQuantity
  subtotal { amount currencyCode }
  lines { id sku quantity unitPrice { amount currencyCode } lineTotal { amount } }
  freshness { projection lagEvents }
}
"""
PAYLOAD = "{ cart { ...C } position userErrors { field message code } }"
CREATE = CART + f"mutation($input: CartCreateInput) {{ cartCreate(input: $input) {PAYLOAD} }}"
ADD = CART + (
    "mutation($id: ID!, $lines: [CartLineInput!]!, $v: Int) "
    f"{{ cartLinesAdd(cartId: $id, lines: $lines, expectedVersion: $v) {PAYLOAD} }}"
)
UPDATE = CART + (
    "mutation($id: ID!, $lines: [CartLineUpdateInput!]!) "
    f"{{ cartLinesUpdate(cartId: $id, lines: $lines) {PAYLOAD} }}"
)
REMOVE = (
    CART + f"mutation($id: ID!, $ids: [ID!]!) {{ cartLinesRemove(cartId: $id, lineIds: $ids) {PAYLOAD} }}"
)
ATTACH = CART + f"mutation($id: ID!) {{ cartAttachCustomer(cartId: $id) {PAYLOAD} }}"
READ = CART + "query($id: ID!, $p: Position) { cart(id: $id, consistentWith: $p) { ...C } }"
MY_CART = CART + "query($p: Position) { myCart(consistentWith: $p) { ...C } }"


async def _ok(client: httpx.AsyncClient, query: str, variables: dict[str, Any], **kw: Any) -> Any:
    """The single root field's value, asserting there were no top-level errors."""
    body = await gql(client, query, variables, **kw)
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    return payload


async def test_guest_cart_reads_its_own_writes(client: httpx.AsyncClient, running: Container) -> None:
    await seed_catalog(running)
    created = await _ok(client, CREATE, {"input": {"lines": [{"sku": "TEE-S", "quantity": 2}]}})
    cart = created["cart"]
    assert created["userErrors"] == [] and int(created["position"]) > 0
    assert cart["id"].startswith("gid://commerce/Cart/") and len(cart["id"].rsplit("/", 1)[1]) == 22
    assert (cart["status"], cart["customerId"], cart["currencyCode"], cart["version"]) == (
        "ACTIVE",
        None,
        "USD",
        1,
    )
    added = await _ok(client, ADD, {"id": cart["id"], "lines": [{"sku": "MUG", "quantity": 1}], "v": 1})
    cart = added["cart"]
    assert cart["version"] == 2 and cart["totalQuantity"] == 3
    assert cart["subtotal"] == {"amount": "48.48", "currencyCode": "USD"}
    assert [(x["sku"], x["unitPrice"]["amount"], x["lineTotal"]["amount"]) for x in cart["lines"]] == [
        ("TEE-S", "19.99", "39.98"),
        ("MUG", "8.50", "8.50"),
    ]
    tee, mug = (line["id"] for line in cart["lines"])
    # A line set to the quantity it has changes nothing: no event, no new version, no position;
    # the cart in the payload is the cart as it is.
    unchanged = await _ok(client, UPDATE, {"id": cart["id"], "lines": [{"lineId": mug, "quantity": 1}]})
    assert unchanged["userErrors"] == [] and unchanged["position"] is None
    assert unchanged["cart"]["version"] == 2 and unchanged["cart"]["totalQuantity"] == 3
    updated = await _ok(client, UPDATE, {"id": cart["id"], "lines": [{"lineId": tee, "quantity": 0}]})
    assert [x["sku"] for x in updated["cart"]["lines"]] == ["MUG"]
    removed = await _ok(client, REMOVE, {"id": cart["id"], "ids": [mug]})
    assert removed["cart"]["lines"] == [] and removed["cart"]["version"] == 4
    read = await _ok(client, READ, {"id": cart["id"], "p": removed["position"]})
    assert read["version"] == 4 and read["freshness"]["projection"] == "carts"


async def test_user_errors_carry_codes_and_field_paths(client: httpx.AsyncClient, running: Container) -> None:
    await seed_catalog(running)
    bad_create = await _ok(client, CREATE, {"input": {"lines": [{"sku": "NOPE", "quantity": 1}]}})
    assert bad_create["cart"] is None and bad_create["position"] is None
    assert [(e["code"], e["field"]) for e in bad_create["userErrors"]] == [
        ("NOT_FOUND", ["input", "lines", "0", "sku"])
    ]
    cart_id = (await _ok(client, CREATE, {}))["cart"]["id"]
    cases = [
        (
            {"id": cart_id, "lines": [{"sku": "MUG", "quantity": 0}]},
            "INVALID_INPUT",
            ["lines", "0", "quantity"],
        ),
        (
            {"id": cart_id, "lines": [{"sku": "EURO-BAG", "quantity": 1}]},
            "INVALID_INPUT",
            ["lines", "0", "sku"],
        ),
        (
            {"id": cart_id, "lines": [{"sku": "MUG", "quantity": 1}], "v": 7},
            "VERSION_CONFLICT",
            ["expectedVersion"],
        ),
        (
            {"id": "gid://commerce/Cart/not-a-cart", "lines": [{"sku": "MUG", "quantity": 1}]},
            "NOT_FOUND",
            ["cartId"],
        ),
        ({"id": "42", "lines": [{"sku": "MUG", "quantity": 1}]}, "NOT_FOUND", ["cartId"]),
    ]
    for variables, code, field in cases:
        payload = await _ok(client, ADD, variables)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)], variables
        assert payload["cart"] is None and payload["position"] is None
    stale_line = await _ok(
        client, UPDATE, {"id": cart_id, "lines": [{"lineId": "gid://commerce/CartLine/x:1", "quantity": 1}]}
    )
    assert [(e["code"], e["field"]) for e in stale_line["userErrors"]] == [
        ("NOT_FOUND", ["lines", "0", "lineId"])
    ]
    assert await _ok(client, READ, {"id": "gid://commerce/Cart/../../etc"}) is None


async def test_access_rules_over_http(
    client: httpx.AsyncClient, running: Container, tokens: JwtAuthenticator
) -> None:
    await seed_catalog(running)
    cust1, cust2 = tokens.mint("cust-1", ["customer"]), tokens.mint("cust-2", ["customer"])
    support = tokens.mint("agent-7", ["support"])
    created = await _ok(client, CREATE, {"input": {"lines": [{"sku": "MUG", "quantity": 1}]}}, token=cust1)
    cart = created["cart"]
    assert cart["customerId"] == "cust-1"
    variables = {"id": cart["id"], "p": created["position"]}
    assert (await _ok(client, READ, variables, token=cust1))["id"] == cart["id"]
    assert (await _ok(client, READ, variables, token=support))["id"] == cart["id"]
    assert await _ok(client, READ, variables) is None
    assert await _ok(client, READ, variables, token=cust2) is None
    refused = await _ok(
        client, ADD, {"id": cart["id"], "lines": [{"sku": "MUG", "quantity": 1}]}, token=cust2
    )
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
    # Support reads another customer's cart but does not change it (issue 14); an admin may.
    by_support = await _ok(
        client, ADD, {"id": cart["id"], "lines": [{"sku": "CAP", "quantity": 1}]}, token=support
    )
    assert [e["code"] for e in by_support["userErrors"]] == ["FORBIDDEN"]
    admin = tokens.mint("admin-1", ["admin"])
    by_admin = await _ok(
        client, ADD, {"id": cart["id"], "lines": [{"sku": "CAP", "quantity": 1}]}, token=admin
    )
    assert by_admin["cart"]["version"] == 2
    mine = await _ok(client, MY_CART, {"p": by_admin["position"]}, token=cust1)
    assert mine["id"] == cart["id"] and mine["version"] == 2
    assert await _ok(client, MY_CART, {}, token=cust2) is None
    assert error_codes(await gql(client, MY_CART, {})) == ["UNAUTHENTICATED"]
    assert error_codes(await gql(client, ATTACH, {"id": cart["id"]})) == ["UNAUTHENTICATED"]
    assert error_codes(await gql(client, ATTACH, {"id": cart["id"]}, token=support)) == ["FORBIDDEN"]


async def test_guest_cart_merges_into_the_customers_cart(
    client: httpx.AsyncClient, running: Container, tokens: JwtAuthenticator
) -> None:
    await seed_catalog(running)
    cust1 = tokens.mint("cust-1", ["customer"])
    own = (await _ok(client, CREATE, {"input": {"lines": [{"sku": "MUG", "quantity": 1}]}}, token=cust1))[
        "cart"
    ]
    guest = (
        await _ok(
            client,
            CREATE,
            {"input": {"lines": [{"sku": "MUG", "quantity": 2}, {"sku": "CAP", "quantity": 1}]}},
        )
    )["cart"]
    merged = await _ok(client, ATTACH, {"id": guest["id"]}, token=cust1)
    assert merged["cart"]["id"] == own["id"] and merged["cart"]["version"] == 2
    assert {x["sku"]: x["quantity"] for x in merged["cart"]["lines"]} == {"MUG": 3, "CAP": 1}
    again = await _ok(client, ATTACH, {"id": guest["id"]}, token=cust1)
    assert again["cart"] == merged["cart"] and again["position"] is None and again["userErrors"] == []
    assert await _ok(client, READ, {"id": guest["id"]}) is None
    old = await _ok(client, READ, {"id": guest["id"]}, token=cust1)
    assert old["status"] == "MERGED" and old["customerId"] == "cust-1"
    # A customer without an active cart simply takes the guest cart over.
    lone = (await _ok(client, CREATE, {"input": {"lines": [{"sku": "CAP", "quantity": 1}]}}))["cart"]
    taken = await _ok(client, ATTACH, {"id": lone["id"]}, token=tokens.mint("cust-9", ["customer"]))
    assert (taken["cart"]["id"], taken["cart"]["customerId"], taken["cart"]["version"]) == (
        lone["id"],
        "cust-9",
        2,
    )


async def test_writes_work_and_reads_fail_clearly_while_the_cart_store_is_down(
    client: httpx.AsyncClient, running: Container
) -> None:
    await seed_catalog(running)
    cart = (await _ok(client, CREATE, {}))["cart"]
    running.mongo_client.set_available(False)
    try:
        body = await gql(client, ADD, {"id": cart["id"], "lines": [{"sku": "MUG", "quantity": 1}]})
        payload = body["data"]["cartLinesAdd"]
        assert payload["userErrors"] == [] and int(payload["position"]) > 0 and payload["cart"] is None
        assert error_codes(body) == ["SERVICE_UNAVAILABLE"]
        assert body["errors"][0]["path"] == ["cartLinesAdd", "cart"]
        read = await gql(client, READ, {"id": cart["id"]})
        assert error_codes(read) == ["SERVICE_UNAVAILABLE"] and read["data"] == {"cart": None}
    finally:
        running.mongo_client.set_available(True)
    caught_up = await _ok(client, READ, {"id": cart["id"], "p": payload["position"]})
    assert caught_up["version"] == 2 and caught_up["lines"][0]["sku"] == "MUG"


UPSERT = """
mutation($input: ProductUpsertInput!) {
  productUpsert(input: $input) { position userErrors { field code message } product { id } }
}
"""
LINE_VARIANTS = """
query($id: ID!, $p: Position) {
  cart(id: $id, consistentWith: $p) { lines { sku variant { sku title price { amount currencyCode } } } }
}
"""


async def test_lines_resolve_catalog_variants_and_withdrawn_skus_resolve_to_null(
    client: httpx.AsyncClient, running: Container, tokens: JwtAuthenticator
) -> None:
    admin = tokens.mint("admin-1", ["admin"])
    product = {
        "handle": "hoodie",
        "title": "Hoodie",
        "currencyCode": "USD",
        "variants": [
            {"sku": "HOOD-S", "title": "Small", "price": "40"},
            {"sku": "HOOD-L", "title": "Large", "price": "42.5"},
        ],
    }
    upserted = await _ok(client, UPSERT, {"input": product}, token=admin)
    assert upserted["userErrors"] == []
    lines = [{"sku": "HOOD-S", "quantity": 1}, {"sku": "HOOD-L", "quantity": 2}]
    cart = (await _ok(client, CREATE, {"input": {"lines": lines}}))["cart"]
    assert cart["subtotal"]["amount"] == "125.00"
    read = await _ok(client, LINE_VARIANTS, {"id": cart["id"]})
    assert [line["variant"] for line in read["lines"]] == [
        {"sku": "HOOD-S", "title": "Small", "price": {"amount": "40.00", "currencyCode": "USD"}},
        {"sku": "HOOD-L", "title": "Large", "price": {"amount": "42.50", "currencyCode": "USD"}},
    ]
    withdrawn = await _ok(
        client, UPSERT, {"input": {**product, "variants": product["variants"][:1]}}, token=admin
    )
    assert withdrawn["userErrors"] == []
    read = await _ok(client, LINE_VARIANTS, {"id": cart["id"], "p": withdrawn["position"]})
    assert [line["variant"] is None for line in read["lines"]] == [False, True]
    refused = await _ok(client, ADD, {"id": cart["id"], "lines": [{"sku": "HOOD-L", "quantity": 1}]})
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("NOT_FOUND", ["lines", "0", "sku"])]
