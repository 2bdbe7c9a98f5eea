"""graphql-transport-ws takes the edge's steps on every operation: persisted-only clients,
budgets, credentials re-checked (expiry, revocation), message size, operation and socket caps."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from commands.payments.sandbox_server import InProcessServer
from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_app
from tests.support.order_ledger import append
from tests.support.orders import new_order_id, placed
from tests.support.waiting import eventually

PROTOCOL = [Subprotocol("graphql-transport-ws")]
FOLLOW = "subscription Follow($id: ID!) { orderUpdated(orderId: $id) { id status } }"
Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve(running: Container) -> AsyncIterator[Serve]:
    """Starts the app over real HTTP with WebSocket (``websocket``) and edge (``edge``) overrides."""
    servers: list[InProcessServer] = []

    async def start(websocket: dict[str, Any] | None = None, edge: dict[str, Any] | None = None) -> str:
        settings = running.settings
        settings = settings.with_overrides(
            websocket=settings.websocket.with_overrides(**(websocket or {})),
            edge=settings.edge.with_overrides(**(edge or {})),
        )
        served = copy.copy(running)
        served.settings = settings
        server = InProcessServer(build_app(served))
        servers.append(server)
        return (await server.start()).replace("http://", "ws://") + "/graphql"

    yield start
    for server in servers:
        await server.stop()


async def _open(url: str, payload: dict[str, Any]) -> ClientConnection:
    ws = await connect(url, subprotocols=PROTOCOL, max_size=None)
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert (await _receive(ws))["type"] == "connection_ack"
    return ws


async def _receive(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def _subscribe(ws: ClientConnection, op_id: str, query: str, **variables: Any) -> None:
    payload = {"query": query, "variables": variables}
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))


async def _closed_with(ws: ClientConnection, timeout: float = 8.0) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    return closed.value.rcvd.code if closed.value.rcvd else None


def _code(message: dict[str, Any]) -> str:
    assert message["type"] == "error", message
    code: str = message["payload"][0]["extensions"]["code"]
    return code


async def _order(running: Container, customer: str = "cust-1") -> str:
    oid = new_order_id()
    at = (await append(running.engine, oid, placed(oid, customer)))[-1].position
    await running.freshness.wait_for("orders", at, 5)
    return f"gid://commerce/Order/{oid}"


async def test_a_persisted_only_client_runs_only_its_documents(serve: Serve, running: Container) -> None:
    url = await serve()
    _, key = await running.services.edge.clients.create("ws-app", persisted_only=True)
    ws = await _open(url, {"apiKey": key})
    await _subscribe(ws, "1", FOLLOW, id="gid://commerce/Order/x")
    assert _code(await _receive(ws)) == "PERSISTED_QUERY_REQUIRED"
    await ws.close()


async def test_queries_and_mutations_are_refused_with_a_code(serve: Serve) -> None:
    ws = await _open(await serve(), {})
    for op_id, query in [("q", "{ __typename }"), ("m", "mutation { cartCreate { cartId } }")]:
        await _subscribe(ws, op_id, query)
        message = await _receive(ws)
        assert message["id"] == op_id and _code(message) == "OPERATION_NOT_SUPPORTED"
    await ws.close()


async def test_each_operation_is_charged_to_the_callers_budget(
    serve: Serve, tokens: JwtAuthenticator
) -> None:
    url = await serve(edge={"budget_capacity": 30, "budget_restore_rate": 0.001})
    ws = await _open(url, {"authorization": f"Bearer {tokens.mint('cust-9', ['customer'])}"})
    seen: list[str] = []
    for attempt in range(60):
        await _subscribe(ws, str(attempt), FOLLOW, id="gid://commerce/Order/nope")
        message = await _receive(ws)
        seen.append(_code(message) if message["type"] == "error" else message["type"])
        if seen[-1] == "RATE_LIMITED":
            break
        while message["type"] == "next":  # the resolver's FORBIDDEN, then complete
            message = await _receive(ws)
    assert seen[-1] == "RATE_LIMITED", seen
    await ws.close()


async def test_an_expiring_token_ends_its_subscription_and_the_socket(
    serve: Serve, running: Container, tokens: JwtAuthenticator
) -> None:
    order = await _order(running)
    # Expired 3 s ago: inside the 5 s leeway for about 2 more seconds.
    ws = await _open(await serve(), {"authorization": f"Bearer {tokens.mint('s-1', ['support'], -3)}"})
    await _subscribe(ws, "1", FOLLOW, id=order)
    message = await _receive(ws, timeout=8)
    assert message["id"] == "1" and _code(message) == "UNAUTHENTICATED"
    assert await _closed_with(ws) == 4401


async def test_a_revoked_key_stops_at_the_next_operation(serve: Serve, running: Container) -> None:
    clients = running.services.edge.clients
    await clients.create("ws-revoked")
    _, key = await clients.create("ws-kept")
    _, revoked_key = await clients.create("ws-soon-revoked")
    kept, revoked = await _open(await serve(), {"apiKey": key}), None
    revoked = await _open(await serve(), {"apiKey": revoked_key})
    await clients.revoke("ws-soon-revoked")
    await _subscribe(revoked, "1", FOLLOW, id="gid://commerce/Order/x")
    assert _code(await _receive(revoked)) == "UNAUTHENTICATED"
    assert await _closed_with(revoked) == 4401
    await _subscribe(kept, "1", FOLLOW, id="gid://commerce/Order/x")
    answer = await _receive(kept)  # the resolver's own refusal: the key still authenticates
    assert answer["type"] == "next" and answer["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await kept.close()


async def test_an_oversized_message_closes_the_socket(serve: Serve) -> None:
    url = await serve(websocket={"max_message_bytes": 16 * 1024})
    ws = await _open(url, {})
    padded = "{ __typename }" + " " * (12 * 1024)
    await _subscribe(ws, "small", padded)
    assert _code(await _receive(ws)) == "OPERATION_NOT_SUPPORTED"  # under the limit: it was read
    await _subscribe(ws, "big", "{ __typename }" + " " * (20 * 1024))
    assert await _closed_with(ws) == 1009


async def test_the_default_message_limit_is_far_below_uvicorns(serve: Serve) -> None:
    ws = await _open(await serve(), {})
    await _subscribe(ws, "big", "{ __typename }" + " " * (1024 * 1024))
    assert await _closed_with(ws) == 1009


async def test_operations_per_socket_are_capped(
    serve: Serve, running: Container, tokens: JwtAuthenticator
) -> None:
    order = await _order(running)
    url = await serve(websocket={"max_operations_per_socket": 2})
    ws = await _open(url, {"authorization": f"Bearer {tokens.mint('s-1', ['support'])}"})
    await _subscribe(ws, "1", FOLLOW, id=order)
    await _subscribe(ws, "2", FOLLOW, id=order)
    await _subscribe(ws, "3", FOLLOW, id=order)
    message = await _receive(ws)
    assert message["id"] == "3" and _code(message) == "OPERATION_LIMIT_EXCEEDED"
    assert message["payload"][0]["extensions"]["limit"] == "socketOperations"
    channel = running.services.order_updates.channel(order.rsplit("/", 1)[1])

    async def following() -> bool:
        ((_, subscribers),) = await running.redis.pubsub_numsub(channel)
        return bool(subscribers == 1)

    # Both running ones got as far as following the order (closing mid-subscribe is another matter).
    await eventually(following, message="the subscriptions never followed the order")
    await ws.close()


async def test_sockets_per_caller_are_capped(serve: Serve, tokens: JwtAuthenticator) -> None:
    url = await serve(websocket={"max_sockets_per_caller": 2})
    auth = {"authorization": f"Bearer {tokens.mint('cust-5', ['customer'])}"}
    first, second = await _open(url, auth), await _open(url, auth)
    third = await connect(url, subprotocols=PROTOCOL)
    await third.send(json.dumps({"type": "connection_init", "payload": auth}))
    assert await _closed_with(third) == 4429
    # Another caller is not affected, and a closed socket frees its place.
    other = await _open(url, {"authorization": f"Bearer {tokens.mint('cust-6', ['customer'])}"})
    await first.close()
    await asyncio.sleep(0.2)
    again = await _open(url, auth)
    for ws in (second, other, again):
        await ws.close()
