"""Operating the read models: projection states, metrics and access logs."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.bootstrap.container import Container
from gateway.bootstrap.logging import JsonFormatter
from gateway.edge.auth import JwtAuthenticator
from queries.projection_status import ProjectionStatusService, StatusThresholds
from tests.helpers import gql
from tests.support.waiting import eventually

STATUS = "query Ops { projections { name store state lastError freshness { lagEvents } } }"
CREATE_CART = 'mutation NewCart { cartCreate(input: {currencyCode: "USD"}) { position userErrors { code } } }'


async def _status(client: httpx.AsyncClient, token: str, name: str) -> dict[str, Any]:
    body = await gql(client, STATUS, token=token)
    assert "errors" not in body, body
    return next(p for p in body["data"]["projections"] if p["name"] == name)


async def _eventually(client: httpx.AsyncClient, token: str, name: str, state: str) -> dict[str, Any]:
    async def reached() -> bool:
        return bool((await _status(client, token, name))["state"] == state)

    await eventually(reached, timeout=10, message=f"{name} never became {state}")
    return await _status(client, token, name)


async def test_failing_projector_reports_failed_then_recovers(
    running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    support = tokens.mint("agent", ["support"])
    running.mongo_client.set_available(False)
    try:
        for _ in range(2):
            assert (await gql(client, CREATE_CART))["data"]["cartCreate"]["userErrors"] == []
        failed = await _eventually(client, support, "carts", "FAILED")
        assert "ServerSelectionTimeoutError" in failed["lastError"]
        assert failed["freshness"]["lagEvents"] >= 2
        assert failed["store"] == "mongodb"
    finally:
        running.mongo_client.set_available(True)
    recovered = await _eventually(client, support, "carts", "RUNNING")
    assert recovered["lastError"] is None


async def test_held_back_projector_reports_catching_up(
    running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    running.services = dataclasses.replace(
        running.services,
        projection_status=ProjectionStatusService(
            running.engine, running.freshness, StatusThresholds(catching_up_events=3)
        ),
    )
    support = tokens.mint("agent", ["support"])
    timeline = running.runner("timeline")
    await timeline.stop()
    for _ in range(5):
        await gql(client, CREATE_CART)
    behind = await _status(client, support, "timeline")
    assert behind["state"] == "CATCHING_UP" and behind["freshness"]["lagEvents"] >= 5
    timeline.start()
    await _eventually(client, support, "timeline", "RUNNING")


async def test_metrics_expose_request_lag_and_business_series(
    running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    await gql(client, STATUS, token=tokens.mint("agent", ["support"]))
    await gql(client, CREATE_CART)
    text = (await client.get("/metrics")).text
    assert 'commerce_http_requests_total{operation="Ops",outcome="ok"}' in text
    assert (
        'commerce_http_request_duration_seconds_bucket{le="0.005",operation="NewCart",outcome="ok"}' in text
    )
    for projection in ("carts", "search", "orders", "timeline", "inventory"):
        assert f'commerce_projection_lag_events{{projection="{projection}"}}' in text
        assert f'commerce_projection_lag_seconds{{projection="{projection}"}}' in text
    for series in (
        "commerce_checkout_outcomes_total",
        "commerce_reservation_conflicts_total",
        "commerce_reservation_expiries_total",
        "commerce_payment_outcomes_total",
        "commerce_idempotent_replays_total",
        "commerce_rate_limit_rejections_total",
    ):
        assert f"# TYPE {series} counter" in text
    # The command connections' queue: the cart command took one and gave it back.
    assert 'commerce_command_connections{state="idle"}' in text
    assert 'commerce_command_connections{state="units_waiting"} 0.0' in text
    served = re.search(r"^commerce_command_connection_waits_total (\S+)$", text, re.MULTILINE)
    assert served is not None and float(served.group(1)) >= 0
    assert "# TYPE commerce_command_connection_wait_seconds_total counter" in text
    assert running.connections.stats().taken >= 1


async def test_one_json_log_line_per_request_with_ids_operation_and_outcome(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        response = await client.post(
            "/graphql",
            json={"query": CREATE_CART, "operationName": "NewCart"},
            headers={"x-request-id": "req-log-1", "x-correlation-id": "corr-9"},
        )
    assert response.headers["x-request-id"] == "req-log-1"
    (record,) = [r for r in caplog.records if r.name == "gateway.access"]
    line = json.loads(JsonFormatter().format(record))
    assert (
        line["msg"] == "request" and line["request_id"] == "req-log-1" and line["correlation_id"] == "corr-9"
    )
    assert line["operation"] == "NewCart" and line["outcome"] == "ok" and line["status"] == 200
    assert isinstance(line["duration_ms"], float)


async def test_request_and_correlation_ids_reach_event_metadata(
    running: Container, client: httpx.AsyncClient
) -> None:
    body = await client.post(
        "/graphql",
        json={"query": CREATE_CART},
        headers={"x-request-id": "req-meta-1", "x-correlation-id": "corr-meta"},
    )
    position = int(body.json()["data"]["cartCreate"]["position"])
    async with running.engine.connect() as conn:
        metadata = (
            await conn.execute(
                text("SELECT metadata FROM ledger_events WHERE position = :p"), {"p": position}
            )
        ).scalar_one()
    assert metadata["request_id"] == "req-meta-1" and metadata["correlation_id"] == "corr-meta"
    assert metadata["actor"] == "anonymous"
