"""``/webhooks/payments`` under hostile input: huge streamed bodies and malformed signature headers."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from commands.payments import SIGNATURE_HEADER
from gateway.http import metrics, webhooks
from gateway.http.webhooks import MAX_BODY_BYTES

CHUNK = b"x" * (1024 * 1024)
THREE_GB_IN_CHUNKS = 3 * 1024


async def test_an_endless_body_is_refused_without_reading_it(client: httpx.AsyncClient) -> None:
    sent = 0

    async def three_gigabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(THREE_GB_IN_CHUNKS):
            sent += len(CHUNK)
            yield CHUNK

    started = time.monotonic()
    response = await client.post(
        "/webhooks/payments",
        content=three_gigabytes(),
        headers={SIGNATURE_HEADER: "t=1,v1=00", "content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["type"] == "too_large"
    # The limit is 64 KiB: the first 1 MiB chunk is past it, so at most one or two chunks were pulled.
    assert sent <= 2 * len(CHUNK) and sent < 3 * 1024**3
    assert time.monotonic() - started < 5


async def test_a_declared_oversized_body_is_refused_up_front(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhooks/payments",
        content=b"{" + b" " * MAX_BODY_BYTES + b"}",
        headers={SIGNATURE_HEADER: "t=1,v1=00", "content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_malformed_signature_headers_are_400(client: httpx.AsyncClient) -> None:
    now = int(time.time())
    malformed = [
        "t=" + "9" * 5000 + ",v1=00",  # too long for int()
        "t=" + "9" * 400 + ",v1=00",  # an int too large for float arithmetic
        f"t={now},v1=" + "a" * 5000,
        "t=,v1=",
        "v1=00",
        f"t={now}",
        "t=-5,v1=00",
        "t=1.5,v1=00",
        ",,,,",
        "=" * 300,
    ]
    for header in malformed:
        response = await client.post(
            "/webhooks/payments",
            content=b"{}",
            headers={SIGNATURE_HEADER: header, "content-type": "application/json"},
        )
        assert response.status_code == 400, (header[:40], response.status_code)
        assert response.json()["error"]["type"] == "invalid_signature"


async def test_a_failing_webhook_is_a_masked_500_logged_with_its_request_id(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The handler answers its own failures (the provider gets JSON it can read). A broken
    # signature check stands in for any fault past the HTTP layer.
    def broken(*_args: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(webhooks, "verify", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.webhooks"):
        response = await client.post(
            "/webhooks/payments",
            content=b"{}",
            headers={
                SIGNATURE_HEADER: "t=1,v1=00",
                "content-type": "application/json",
                "x-request-id": "wh-500",
            },
        )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "wh-500"
    assert response.json()["error"]["type"] == "internal"
    assert "secret detail" not in response.text
    failures = [r for r in caplog.records if r.getMessage() == "payment webhook failed"]
    assert failures and failures[0].exc_info is not None
    assert "secret detail" in str(failures[0].exc_info[1])


async def test_other_methods_on_the_webhook_path_are_405(client: httpx.AsyncClient) -> None:
    response = await client.get("/webhooks/payments")
    assert response.status_code == 405


async def test_a_failing_route_is_logged_with_its_request_id(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Any route but GraphQL and the webhook: Starlette answers the masked 500 and raises the
    # failure on, past the middleware that holds the request's id.
    def broken() -> bytes:
        raise RuntimeError("metrics detail")

    monkeypatch.setattr(metrics, "generate_latest", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.access"), contextlib.suppress(RuntimeError):
        response = await client.get("/metrics", headers={"x-request-id": "route-500"})
        assert response.status_code == 500
        assert "metrics detail" not in response.text
    failures = [r for r in caplog.records if r.getMessage() == "request failed"]
    assert failures and getattr(failures[0], "request_id", None) == "route-500"
    assert failures[0].exc_info is not None and "metrics detail" in str(failures[0].exc_info[1])
