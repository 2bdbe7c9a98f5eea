"""/readyz names the failed check without the exception text; /metrics serves lag from a short cache."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from gateway.bootstrap.container import Container
from gateway.http.app import build_app
from gateway.http.metrics import LagCache

LAG_LINE = re.compile(r'^commerce_projection_lag_events\{projection="([^"]+)"\} (\S+)$', re.M)


async def test_readyz_names_the_failed_check_and_logs_the_details(
    running: Container, caplog: pytest.LogCaptureFixture
) -> None:
    running.mongo_client.set_available(False)
    try:
        transport = httpx.ASGITransport(app=build_app(running))
        with caplog.at_level(logging.WARNING, logger="gateway.health"):
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                response = await http.get("/readyz")
    finally:
        running.mongo_client.set_available(True)
    assert response.status_code == 503
    mongodb = response.json()["checks"]["mongodb"]
    assert mongodb["ok"] is False and mongodb["detail"] == "failed"
    logged = [r for r in caplog.records if "mongodb" in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    # The exception's own text is in the log record, not in the response.
    exception_text = str(logged[0].exc_info[1])
    assert exception_text and exception_text not in response.text


def _lag(metrics: str) -> float:
    return sum(float(value) for _, value in LAG_LINE.findall(metrics))


async def test_metrics_serve_lag_from_a_cache_a_few_seconds_old(container: Container) -> None:
    app = build_app(container)
    cache = app.state.lag_cache = LagCache(max_age_seconds=60)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        first = _lag((await http.get("/metrics")).text)
        created = await http.post(
            "/graphql",
            json={"query": "mutation { cartCreate { cartId } }"},
            headers={"accept": "application/json"},
        )
        assert created.json()["data"]["cartCreate"]["cartId"]
        # Projectors are not running: the new event is lag, but the cached series do not show it yet.
        assert _lag((await http.get("/metrics")).text) == first
        cache.max_age_seconds = 0
        assert _lag((await http.get("/metrics")).text) > first
