"""graphql-transport-ws through the real app: authentication in connection_init, checks, masking."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_app
from tests.support.waiting import eventually

PROTOCOL = [Subprotocol("graphql-transport-ws")]


@pytest.fixture
async def ws_url(container: Container) -> AsyncIterator[str]:
    settings = container.settings
    container.settings = settings.with_overrides(edge=settings.edge.with_overrides(max_depth=3))
    config = uvicorn.Config(
        build_app(container), host="127.0.0.1", port=0, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, timeout=5, message="uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task
        container.settings = settings


async def _init(ws: ClientConnection, payload: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return message


async def _rejected(url: str, payload: dict[str, Any]) -> int | None:
    async with connect(url, subprotocols=PROTOCOL) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await _init(ws, payload)
        return closed.value.rcvd.code if closed.value.rcvd else None


async def test_connection_init_credentials(
    ws_url: str, container: Container, tokens: JwtAuthenticator
) -> None:
    _, key = await container.services.edge.clients.create("ws-partner")
    accepted: list[dict[str, Any]] = [
        {},
        {"authorization": f"Bearer {tokens.mint('cust-1', ['customer'])}"},
        {"apiKey": key},
    ]
    for payload in accepted:
        async with connect(ws_url, subprotocols=PROTOCOL) as ws:
            assert (await _init(ws, payload))["type"] == "connection_ack"
    forged = JwtAuthenticator("another-secret-that-is-long-enough-000000").mint("x", ["admin"])
    refused: list[dict[str, Any]] = [
        {"authorization": f"Bearer {forged}"},
        {"authorization": "Basic abc"},
        {"apiKey": "cgk_unknown"},
        {"apiKey": 42},
    ]
    for payload in refused:
        assert await _rejected(ws_url, payload) == 4403, payload


async def test_operations_over_ws_are_checked_and_coded(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=PROTOCOL) as ws:
        assert (await _init(ws, {}))["type"] == "connection_ack"
        cases = {
            "1": ('subscription { orderUpdated(orderId: "o") { nope } }', "GRAPHQL_VALIDATION_FAILED"),
            "2": (
                'subscription { orderUpdated(orderId: "o") { payment { amount { amount } } } }',
                "OPERATION_LIMIT_EXCEEDED",
            ),
        }
        for op_id, (query, code) in cases.items():
            await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert message["id"] == op_id and message["type"] == "error", message
            assert message["payload"][0]["extensions"]["code"] == code


async def test_a_message_with_a_lone_surrogate_is_not_json_and_closes_the_socket(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=PROTOCOL) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.send('{"type": "connection_init", "payload": {"x": "\\ud800"}}')
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
