"""Support reads another customer's cart but cannot change it or check it out; an admin may, recorded."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from commands.store.tables import ledger_events
from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from tests.helpers import gql
from tests.support.cart import seed_catalog
from tests.support.checkout import ADDRESS, CHECKOUT

PAYLOAD = "{ cart { id version } cartId position userErrors { field code } }"
CREATE = f"mutation($input: CartCreateInput) {{ cartCreate(input: $input) {PAYLOAD} }}"
ADD = (
    f"mutation($id: ID!, $lines: [CartLineInput!]!) {{ cartLinesAdd(cartId: $id, lines: $lines) {PAYLOAD} }}"
)
UPDATE = (
    "mutation($id: ID!, $lines: [CartLineUpdateInput!]!) "
    f"{{ cartLinesUpdate(cartId: $id, lines: $lines) {PAYLOAD} }}"
)
REMOVE = f"mutation($id: ID!, $ids: [ID!]!) {{ cartLinesRemove(cartId: $id, lineIds: $ids) {PAYLOAD} }}"
READ = "query($id: ID!, $p: Position) { cart(id: $id, consistentWith: $p) { id lines { id } } }"


async def _data(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> Any:
    body = await gql(client, query, variables, token=token)
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    return payload


def _codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def test_support_cannot_write_a_customers_cart_and_admin_can(
    client: httpx.AsyncClient, running: Container, tokens: JwtAuthenticator
) -> None:
    await seed_catalog(running)
    customer = tokens.mint("cust-1", ["customer"])
    support = tokens.mint("agent-7", ["support"])
    admin = tokens.mint("boss-1", ["admin"])
    created = await _data(client, CREATE, {"input": {"lines": [{"sku": "MUG", "quantity": 1}]}}, customer)
    cart_id = created["cartId"]
    line = {"sku": "CAP", "quantity": 1}

    read = await gql(client, READ, {"id": cart_id, "p": created["position"]}, token=support)
    line_id = read["data"]["cart"]["lines"][0]["id"]
    assert _codes(await _data(client, ADD, {"id": cart_id, "lines": [line]}, support)) == ["FORBIDDEN"]
    update = {"id": cart_id, "lines": [{"lineId": line_id, "quantity": 5}]}
    assert _codes(await _data(client, UPDATE, update, support)) == ["FORBIDDEN"]
    assert _codes(await _data(client, REMOVE, {"id": cart_id, "ids": [line_id]}, support)) == ["FORBIDDEN"]
    checkout = {
        "input": {
            "cartId": cart_id,
            "idempotencyKey": "support-checkout",
            "email": "ada@example.com",
            "shippingAddress": ADDRESS,
            "payment": {"token": "tok_ok"},
        }
    }
    refused = await _data(client, CHECKOUT, checkout, support)
    assert _codes(refused) == ["FORBIDDEN"] and refused["order"] is None

    by_admin = await _data(client, ADD, {"id": cart_id, "lines": [line]}, admin)
    assert _codes(by_admin) == []
    async with running.engine.connect() as conn:
        actors = [
            row.metadata["actor"]
            for row in await conn.execute(
                select(ledger_events.c.metadata)
                .where(ledger_events.c.stream_id.like(f"%{cart_id.rsplit('/', 1)[1]}%"))
                .order_by(ledger_events.c.position)
            )
        ]
    assert actors[0] == "customer:cust-1" and actors[-1] == "admin:boss-1", actors
    assert "support:agent-7" not in actors


async def test_support_acting_as_no_customer_creates_and_changes_no_cart_a_guests_included(
    client: httpx.AsyncClient, running: Container, tokens: JwtAuthenticator
) -> None:
    await seed_catalog(running)
    support = tokens.mint("agent-7", ["support"])
    refused = await _data(client, CREATE, {"input": {"lines": [{"sku": "MUG", "quantity": 1}]}}, support)
    assert _codes(refused) == ["FORBIDDEN"] and refused["cartId"] is None and refused["position"] is None

    guest = await gql(client, CREATE, {"input": {"lines": [{"sku": "MUG", "quantity": 1}]}})
    cart_id = guest["data"]["cartCreate"]["cartId"]
    assert _codes(
        await _data(client, ADD, {"id": cart_id, "lines": [{"sku": "CAP", "quantity": 1}]}, support)
    ) == ["FORBIDDEN"]
    # The guest's own writes go on; and an agent who is also a customer has a cart of their own.
    added = await gql(client, ADD, {"id": cart_id, "lines": [{"sku": "CAP", "quantity": 1}]})
    assert _codes(added["data"]["cartLinesAdd"]) == []
    both = tokens.mint("agent-8", ["support", "customer"])
    own = await _data(client, CREATE, {"input": {"lines": [{"sku": "MUG", "quantity": 1}]}}, both)
    assert _codes(own) == [] and own["cartId"]
    async with running.engine.connect() as conn:
        actors = list(await conn.scalars(select(ledger_events.c.metadata["actor"].astext)))
    assert "support:agent-7" not in actors
