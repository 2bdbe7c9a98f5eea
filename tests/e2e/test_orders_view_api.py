"""``order`` and ``orders`` over GraphQL/HTTP: access rules, status filter, keyset paging,
page-size bounds, freshness lag and ``consistentWith``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import event, text
from starlette.requests import Request

from commands.events import order as ev
from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import Settings
from gateway.edge.auth import ANONYMOUS, JwtAuthenticator
from gateway.edge.context import Info, RequestContext
from gateway.http.app import build_app
from gateway.schema.orders import OrderStatus, order_as_of
from queries.freshness import StaleRead
from tests.helpers import error_codes, gql
from tests.support.order_ledger import append
from tests.support.orders import happy_path, new_order_id, placed
from tests.support.waiting import eventually

ORDER = """
fragment O on Order {
  id number customerId email status
  lines { sku title quantity unitPrice { amount currencyCode } lineTotal { amount } }
  subtotal { amount currencyCode } total { amount }
  payment { status amount { amount currencyCode } providerReference }
  shippingAddress { name line1 line2 city postalCode countryCode }
  history { type at position }
  createdAt updatedAt
  freshness { projection position headPosition lagEvents }
}
"""
READ = ORDER + "query($id: ID!, $p: Position) { order(id: $id, consistentWith: $p) { ...O } }"
LIST = """
query($c: ID, $s: OrderStatus, $first: Int, $after: String, $p: Position) {
  orders(customerId: $c, status: $s, first: $first, after: $after, consistentWith: $p) {
    edges { cursor node { id status createdAt freshness { projection } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    freshness { projection position headPosition lagEvents lagSeconds }
  }
}
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(read_wait_seconds=0.5)


@pytest.fixture
async def idle_client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """GraphQL over the real app while the projectors stand still (driven by hand)."""
    transport = httpx.ASGITransport(app=build_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


def gid(order_id: str) -> str:
    return f"gid://commerce/Order/{order_id}"


async def data(client: httpx.AsyncClient, query: str, variables: dict[str, Any], **kw: Any) -> Any:
    body = await gql(client, query, variables, **kw)
    assert "errors" not in body, body
    (value,) = body["data"].values()
    return value


async def test_order_is_visible_to_its_owner_and_staff_only(
    client: httpx.AsyncClient, tokens: JwtAuthenticator, running: Container
) -> None:
    owned, guest = new_order_id(), new_order_id()
    start = placed(owned, "cust-1", number="CG-1")
    await append(running.engine, guest, placed(guest, None))
    await append(running.engine, owned, start)
    recorded = await append(running.engine, owned, *happy_path(owned, start.total)[:3])
    at = str(recorded[-1].position)
    owner, other = tokens.mint("cust-1", ["customer"]), tokens.mint("cust-2", ["customer"])
    support, admin = tokens.mint("s-1", ["support"]), tokens.mint("a-1", ["admin"])

    order = await data(client, READ, {"id": gid(owned), "p": at}, token=owner)
    assert (order["id"], order["number"], order["customerId"], order["status"]) == (
        gid(owned),
        "CG-1",
        "cust-1",
        "CONFIRMED",
    )
    assert order["payment"] == {
        "status": "AUTHORIZED",
        "amount": {"amount": "53.48", "currencyCode": "USD"},
        "providerReference": "pay_1",
    }
    assert order["lines"][0] == {
        "sku": "TEE-S",
        "title": "Tee, small",
        "quantity": 2,
        "unitPrice": {"amount": "19.99", "currencyCode": "USD"},
        "lineTotal": {"amount": "39.98"},
    }
    assert (order["subtotal"]["amount"], order["total"]["amount"]) == ("48.48", "53.48")
    assert order["shippingAddress"]["line2"] is None and order["shippingAddress"]["countryCode"] == "GB"
    assert [h["type"] for h in order["history"]] == [
        "OrderPlaced",
        "PaymentOutcomeUnknown",
        "PaymentAuthorized",
        "OrderConfirmed",
    ]
    assert order["history"][-1]["position"] == at
    assert order["freshness"]["projection"] == "orders" and int(order["freshness"]["position"]) >= int(at)

    for token in (support, admin):
        assert (await data(client, READ, {"id": gid(owned)}, token=token))["number"] == "CG-1"
        assert (await data(client, READ, {"id": gid(guest)}, token=token))["customerId"] is None
    for maybe in (other, None):
        assert await data(client, READ, {"id": gid(owned)}, token=maybe) is None
    for maybe in (owner, None):
        assert await data(client, READ, {"id": gid(guest)}, token=maybe) is None
    for bad in (gid(new_order_id()), gid("not-a-uuid"), owned, f"gid://commerce/Cart/{owned}"):
        assert await data(client, READ, {"id": bad}, token=admin) is None
    node = await data(client, "query($id: ID!) { node(id: $id) { id } }", {"id": gid(owned)}, token=owner)
    assert node == {"id": gid(owned)}


async def test_orders_listing_rules(
    client: httpx.AsyncClient, tokens: JwtAuthenticator, running: Container
) -> None:
    mine, theirs = new_order_id(), new_order_id()
    await append(running.engine, theirs, placed(theirs, "cust-2"))
    at = str((await append(running.engine, mine, placed(mine, "cust-1")))[-1].position)
    owner = tokens.mint("cust-1", ["customer"])

    async def ids(token: str | None, **variables: Any) -> list[str]:
        page = await data(client, LIST, {"p": at, **variables}, token=token)
        return [edge["node"]["id"] for edge in page["edges"]]

    assert await ids(owner) == [gid(mine)]
    assert await ids(owner, c="cust-1") == [gid(mine)]
    for role in ("support", "admin"):
        assert await ids(tokens.mint("staff", [role]), c="cust-2") == [gid(theirs)]
        assert await ids(tokens.mint("staff", [role]), c="nobody") == []
    cases: list[tuple[str | None, dict[str, Any], str]] = [
        (None, {}, "UNAUTHENTICATED"),
        (None, {"c": "cust-1"}, "UNAUTHENTICATED"),
        (owner, {"c": "cust-2"}, "FORBIDDEN"),
        (tokens.mint("s-1", ["support"]), {}, "BAD_USER_INPUT"),
    ]
    for token, variables, code in cases:
        body = await gql(client, LIST, variables, token=token)
        assert error_codes(body) == [code], (token, variables, body)


async def test_status_filter_and_cursor_paging(
    client: httpx.AsyncClient, tokens: JwtAuthenticator, running: Container
) -> None:
    ids = [new_order_id() for _ in range(9)]
    for i, oid in enumerate(ids):
        start = placed(oid, "cust-1")
        await append(running.engine, oid, start)
        if i % 3 == 0:
            await append(running.engine, oid, *happy_path(oid, start.total)[1:3])
    other = new_order_id()
    # The read waits for every order above: the newest (ids[-1]) was placed after the last payment.
    last = (await append(running.engine, other, placed(other, "cust-2")))[-1].position
    owner = tokens.mint("cust-1", ["customer"])
    first_page = await data(client, LIST, {"first": 1, "p": str(last)}, token=owner)
    assert first_page["edges"][0]["node"]["id"] == gid(ids[-1])
    # Three orders share one timestamp: the keyset's order_id tie-break must still be exact.
    async with running.engine.begin() as conn:
        await conn.execute(
            text("UPDATE order_view SET created_at = :at WHERE order_id = ANY(CAST(:ids AS text[]))"),
            {"at": datetime(2026, 3, 1, tzinfo=UTC), "ids": ids[2:5]},
        )

    seen: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = await data(client, LIST, {"first": 2, "after": after}, token=owner)
        seen += [edge["node"] for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 9 and {n["id"] for n in seen} == {gid(i) for i in ids}
    assert [(n["createdAt"], n["id"]) for n in seen] == sorted(
        ((n["createdAt"], n["id"]) for n in seen),
        key=lambda k: (-datetime.fromisoformat(k[0]).timestamp(), k[1]),
    )
    assert {n["freshness"]["projection"] for n in seen} == {"orders"}

    confirmed = await data(client, LIST, {"s": "CONFIRMED", "first": 100}, token=owner)
    assert {e["node"]["id"] for e in confirmed["edges"]} == {gid(ids[i]) for i in (0, 3, 6)}
    assert {e["node"]["status"] for e in confirmed["edges"]} == {"CONFIRMED"}
    shipped = await data(client, LIST, {"s": "SHIPPED"}, token=owner)
    assert shipped["edges"] == [] and shipped["pageInfo"]["endCursor"] is None

    for variables in ({"first": 0}, {"first": 101}, {"first": -1}, {"after": "nope"}):
        assert error_codes(await gql(client, LIST, variables, token=owner)) == ["BAD_USER_INPUT"]


async def test_freshness_lag_and_consistent_with(
    idle_client: httpx.AsyncClient, tokens: JwtAuthenticator, container: Container
) -> None:
    runner = container.runner("orders")
    await runner.catch_up()
    oid = new_order_id()
    recorded = await append(container.engine, oid, placed(oid, "cust-1"), ev.PaymentDeclined(oid, "card"))
    at = str(recorded[-1].position)
    owner = tokens.mint("cust-1", ["customer"])

    lagging = await data(idle_client, LIST, {}, token=owner)
    assert lagging["edges"] == []
    assert lagging["freshness"]["lagEvents"] == 2 and lagging["freshness"]["headPosition"] == at
    assert lagging["freshness"]["lagSeconds"] >= 0
    assert await data(idle_client, READ, {"id": gid(oid)}, token=owner) is None

    waiting = asyncio.ensure_future(gql(idle_client, READ, {"id": gid(oid), "p": at}, token=owner))
    await asyncio.sleep(0.1)  # a window in which a read that ignored the position would answer
    assert not waiting.done()
    await runner.catch_up()
    body = await waiting
    assert body["data"]["order"]["payment"]["status"] == "DECLINED", body
    assert body["data"]["order"]["freshness"]["lagEvents"] == 0

    listed = await data(idle_client, LIST, {"p": at}, token=owner)
    assert [e["node"]["id"] for e in listed["edges"]] == [gid(oid)]
    assert listed["freshness"]["position"] == at and listed["freshness"]["lagEvents"] == 0

    ahead = str(int(at) + 1000)
    for query, variables in ((READ, {"id": gid(oid), "p": ahead}), (LIST, {"p": ahead})):
        body = await gql(idle_client, query, variables, token=owner)
        assert error_codes(body) == ["STALE_READ"], body

    # Appended as another process would (not through this process's command connections): the
    # freshness shows it once the ledger's notification has arrived.
    await append(container.engine, oid, ev.OrderCancelled(oid, "declined", "system"))
    stale: dict[str, Any] = {}

    async def lag_shown() -> bool:
        stale.update(await data(idle_client, READ, {"id": gid(oid)}, token=owner))
        return bool(stale["freshness"]["lagEvents"] == 1)

    await eventually(lag_shown, message="the unapplied cancellation never showed as lag")
    assert stale["status"] == "PAYMENT_PENDING"
    assert Decimal(stale["total"]["amount"]) == Decimal("53.48")


async def test_many_orders_in_one_request_cost_one_query(
    client: httpx.AsyncClient, tokens: JwtAuthenticator, running: Container
) -> None:
    ids = [new_order_id() for _ in range(5)]
    at = 0
    for oid in ids:
        at = (await append(running.engine, oid, placed(oid, "cust-1")))[-1].position
    await running.freshness.wait_for("orders", at, 5)
    fields = " ".join(
        f'o{i}: order(id: "{gid(oid)}") {{ id freshness {{ lagEvents }} }}' for i, oid in enumerate(ids)
    )
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM order_view" in statement:
            statements.append(statement)

    event.listen(running.engine.sync_engine, "before_cursor_execute", record)
    try:
        body = await gql(client, f"{{ {fields} }}", token=tokens.mint("cust-1", ["customer"]))
    finally:
        event.remove(running.engine.sync_engine, "before_cursor_execute", record)
    assert "errors" not in body, body
    assert [body["data"][f"o{i}"]["id"] for i in range(5)] == [gid(oid) for oid in ids]
    assert len(statements) == 1


class _Info:
    """What ``order_as_of`` reads of Strawberry's Info: the request context."""

    def __init__(self, context: RequestContext) -> None:
        self.context = context


async def test_order_as_of_waits_for_the_position_and_rereads(container: Container) -> None:
    runner = container.runner("orders")
    request = Request(
        {"type": "http", "method": "POST", "path": "/graphql", "headers": [], "query_string": b""}
    )
    context = RequestContext(request, None, ANONYMOUS, "req-1", "corr-1", container)
    info = cast(Info, _Info(context))
    oid = new_order_id()
    placed_at = (await append(container.engine, oid, placed(oid, None)))[-1].position

    reading = asyncio.ensure_future(order_as_of(info, oid, placed_at))
    await asyncio.sleep(0.1)  # a window in which a read that ignored the position would answer
    assert not reading.done()
    await runner.catch_up()
    order = await reading
    assert order is not None and order.status is OrderStatus.PAYMENT_PENDING and order.customer_id is None

    confirmed_at = (await append(container.engine, oid, ev.OrderConfirmed(oid)))[-1].position
    await runner.catch_up()
    again = await order_as_of(info, gid(oid), confirmed_at)
    assert again is not None and again.status is OrderStatus.CONFIRMED
    assert await order_as_of(info, new_order_id(), None) is None
    with pytest.raises(StaleRead):
        await order_as_of(info, oid, confirmed_at + 1000)
