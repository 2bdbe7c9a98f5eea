"""``orderUpdated`` over a real WebSocket (graphql-transport-ws): the owner and staff get the
order each time its status changes; other callers get an error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from commands.events import order as ev
from commands.payments.sandbox_server import InProcessServer
from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_app
from tests.support.order_ledger import append
from tests.support.orders import new_order_id, placed
from tests.support.waiting import eventually

SUBSCRIBE = """
subscription($id: ID!) {
  orderUpdated(orderId: $id) {
    id status payment { status } history { type } freshness { projection lagEvents }
  }
}
"""


@pytest.fixture
async def ws_url(running: Container) -> AsyncIterator[str]:
    server = InProcessServer(build_app(running))
    base = await server.start()
    yield base.replace("http://", "ws://") + "/graphql"
    await server.stop()


async def subscribe(url: str, order_id: str, token: str | None) -> ClientConnection:
    ws = await websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")])
    payload = {} if token is None else {"authorization": f"Bearer {token}"}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    variables = {"id": f"gid://commerce/Order/{order_id}"}
    await ws.send(
        json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}})
    )
    return ws


async def receive(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def test_owner_and_staff_follow_status_changes(
    ws_url: str, tokens: JwtAuthenticator, running: Container
) -> None:
    oid = new_order_id()
    at = (await append(running.engine, oid, placed(oid, "cust-1")))[-1].position
    await running.freshness.wait_for("orders", at, 5)
    owner = await subscribe(ws_url, oid, tokens.mint("cust-1", ["customer"]))
    staff = await subscribe(ws_url, oid, tokens.mint("s-1", ["support"]))
    # Both subscriptions share this process's one Redis subscription to the order's channel; a
    # subscriber that joins it after the publish still sees the change at its first resync.
    channel = running.services.order_updates.channel(oid)

    async def joined() -> bool:
        ((_, subscribers),) = await running.redis.pubsub_numsub(channel)
        return bool(subscribers == 1)

    await eventually(joined, message="the gateway never joined the order's channel")

    await append(
        running.engine, oid, ev.PaymentAuthorized(oid, "p1", Decimal("53.48"), "USD"), ev.OrderConfirmed(oid)
    )
    for ws in (owner, staff):
        message = await receive(ws)
        assert message["type"] == "next", message
        order = message["payload"]["data"]["orderUpdated"]
        assert (order["status"], order["payment"]["status"]) == ("CONFIRMED", "AUTHORIZED")
        assert order["history"][-1] == {"type": "OrderConfirmed"}
        assert order["freshness"] == {"projection": "orders", "lagEvents": 0}

    # A payment-only change is not a status change; the next status change is.
    await append(running.engine, oid, ev.PaymentCaptured(oid, "p1", Decimal("53.48")))
    await append(running.engine, oid, ev.FulfillmentRequested(oid))
    message = await receive(owner)
    assert message["payload"]["data"]["orderUpdated"]["status"] == "FULFILLMENT_REQUESTED"
    assert message["payload"]["data"]["orderUpdated"]["payment"]["status"] == "CAPTURED"

    await owner.send(json.dumps({"id": "1", "type": "complete"}))
    await owner.close()
    await staff.close()


@pytest.mark.parametrize(
    ("subject", "roles", "owned", "code"),
    [
        (None, [], True, "UNAUTHENTICATED"),
        ("cust-2", ["customer"], True, "FORBIDDEN"),
        ("cust-1", ["customer"], False, "FORBIDDEN"),
    ],
)
async def test_others_get_an_error(
    ws_url: str,
    tokens: JwtAuthenticator,
    running: Container,
    subject: str | None,
    roles: list[str],
    owned: bool,
    code: str,
) -> None:
    oid = new_order_id()
    if owned:
        at = (await append(running.engine, oid, placed(oid, "cust-1")))[-1].position
        await running.freshness.wait_for("orders", at, 5)
    ws = await subscribe(ws_url, oid, None if subject is None else tokens.mint(subject, roles))
    message = await receive(ws)
    errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors")
    assert [e["extensions"]["code"] for e in errors] == [code], message
    await ws.close()
