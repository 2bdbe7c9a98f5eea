"""The sandbox provider and the HTTP client, over real HTTP, with a real webhook receiver."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from commands.payments import (
    SIGNATURE_HEADER,
    HttpPaymentProvider,
    IdempotencyMismatch,
    InvalidPaymentRequest,
    PaymentProviderUnavailable,
    PaymentResult,
    PaymentStatus,
    verify,
)
from commands.payments.sandbox import InProcessServer, SandboxConfig, SandboxServer
from tests.support.waiting import eventually

SECRET = "whsec_integration"
EUR = "EUR"
WAIT_SECONDS = 3.0


@dataclass
class Delivery:
    body: bytes
    signature: str | None

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


@dataclass
class Receiver:
    """Webhook endpoint; answers 500 while ``fail_next`` > 0 to exercise retries."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    fail_next: int = 0
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def endpoint(self, request: Request) -> Response:
        if self.fail_next > 0:
            self.fail_next -= 1
            return Response(status_code=500)
        delivery = Delivery(await request.body(), request.headers.get(SIGNATURE_HEADER))
        async with self._arrived:
            self.deliveries.append(delivery)
            self._arrived.notify_all()
        return Response(status_code=204)

    async def wait_for(self, predicate: Callable[[list[Delivery]], bool]) -> None:
        async with asyncio.timeout(WAIT_SECONDS), self._arrived:
            await self._arrived.wait_for(lambda: predicate(self.deliveries))

    async def event(self, event_type: str, key: str) -> Delivery:
        def match(d: Delivery) -> bool:
            return bool(d.event["type"] == event_type and d.event["data"]["idempotency_key"] == key)

        await self.wait_for(lambda ds: any(match(d) for d in ds))
        return next(d for d in self.deliveries if match(d))


# Servers live for the module (uvicorn takes ~0.15 s to stop); each test starts from a reset sandbox.
@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server = InProcessServer(Starlette(routes=[Route("/hooks", receiver.endpoint, methods=["POST"])]))
    receiver.url = await server.start() + "/hooks"
    yield receiver
    await server.stop()


@pytest.fixture(scope="module")
async def sandbox(receiver: Receiver) -> AsyncIterator[SandboxServer]:
    config = SandboxConfig(
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        timeout_hold_seconds=1.0,
        webhook_retry_base_seconds=0.05,
    )
    async with SandboxServer(config) as server:
        yield server


@pytest.fixture
async def http(sandbox: SandboxServer, receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.base_url, trust_env=False) as client:
        assert (await client.post("/_sandbox/reset")).status_code == 200
        receiver.deliveries.clear()
        receiver.fail_next = 0
        yield client


@pytest.fixture
async def provider(http: httpx.AsyncClient, sandbox: SandboxServer) -> AsyncIterator[HttpPaymentProvider]:
    async with HttpPaymentProvider(sandbox.base_url, timeout_seconds=2.0) as client:
        yield client


async def configure(http: httpx.AsyncClient, **changes: Any) -> None:
    response = await http.post("/_sandbox/config", json=changes)
    assert response.status_code == 200, response.text


async def payments(http: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    body: dict[str, Any] = (await http.get("/_sandbox/payments", params=params)).json()
    return body


async def authorize(
    provider: HttpPaymentProvider, key: str, token: str = "tok_ok", amount: str = "42.50"
) -> PaymentResult:
    return await provider.authorize(
        idempotency_key=key, amount=Decimal(amount), currency=EUR, token=token, reference_hint=f"order-{key}"
    )


def assert_signed(delivery: Delivery) -> None:
    verify(SECRET, delivery.signature, delivery.body, now=time.time())


# -- authorize ------------------------------------------------------------------


async def test_authorize_ok_answers_and_sends_signed_webhook(
    provider: HttpPaymentProvider, receiver: Receiver
) -> None:
    result = await authorize(provider, "k-ok")

    assert result.status is PaymentStatus.AUTHORIZED
    assert result.provider_reference is not None and result.provider_reference.startswith("pay_")
    assert (result.amount, result.currency, result.idempotency_key) == (Decimal("42.50"), EUR, "k-ok")
    assert result.decline_reason is None
    delivery = await receiver.event("payment.authorized", "k-ok")
    assert_signed(delivery)
    assert delivery.event["id"].startswith("evt_")
    assert delivery.event["data"] == {
        "provider_reference": result.provider_reference,
        "idempotency_key": "k-ok",
        "reference_hint": "order-k-ok",
        "amount": "42.50",
        "currency": EUR,
        "status": "AUTHORIZED",
        "sequence": 1,
    }


@pytest.mark.parametrize(
    ("token", "reason"), [("tok_decline", "card_declined"), ("tok_bogus", "invalid_token")]
)
async def test_declines(provider: HttpPaymentProvider, receiver: Receiver, token: str, reason: str) -> None:
    result = await authorize(provider, f"k-{token}", token=token)

    assert result.status is PaymentStatus.DECLINED
    assert result.decline_reason == reason
    assert result.provider_reference is not None
    assert_signed(await receiver.event("payment.declined", f"k-{token}"))


async def test_same_key_twice_charges_once(provider: HttpPaymentProvider, http: httpx.AsyncClient) -> None:
    first = await authorize(provider, "k-seq")
    second = await authorize(provider, "k-seq")

    assert second == first
    assert second.raw == first.raw
    listing = await payments(http)
    assert listing["total_charges"] == 1
    assert [p["charge_count"] for p in listing["payments"]] == [1]


async def test_concurrent_same_key_charges_once(
    provider: HttpPaymentProvider, http: httpx.AsyncClient
) -> None:
    await configure(http, latency_ms=20)

    results = await asyncio.gather(*(authorize(provider, "k-conc") for _ in range(20)))

    assert all(r == results[0] for r in results)
    assert results[0].status is PaymentStatus.AUTHORIZED
    listing = await payments(http, reference_hint="order-k-conc")
    assert len(listing["payments"]) == 1
    assert listing["total_charges"] == 1


async def test_same_key_different_parameters_is_a_mismatch(
    provider: HttpPaymentProvider, http: httpx.AsyncClient
) -> None:
    first = await authorize(provider, "k-mm", amount="10.00")

    with pytest.raises(IdempotencyMismatch):
        await authorize(provider, "k-mm", amount="11.00")
    with pytest.raises(IdempotencyMismatch):
        await provider.capture(idempotency_key="k-mm", provider_reference="pay_x", amount=Decimal(1))
    assert await authorize(provider, "k-mm", amount="10.0") == first  # same amount, other spelling
    assert (await payments(http))["total_charges"] == 1


# -- unknown outcomes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "outcome", "event_type"),
    [
        ("tok_timeout", PaymentStatus.AUTHORIZED, "payment.authorized"),
        ("tok_late_decline", PaymentStatus.DECLINED, "payment.declined"),
    ],
)
async def test_timeout_then_late_outcome(
    sandbox: SandboxServer,
    http: httpx.AsyncClient,
    receiver: Receiver,
    token: str,
    outcome: PaymentStatus,
    event_type: str,
) -> None:
    async with HttpPaymentProvider(sandbox.base_url, timeout_seconds=0.3) as impatient:
        key = f"k-{token}"

        with pytest.raises(PaymentProviderUnavailable):
            await authorize(impatient, key, token=token)

        pending = await impatient.lookup(idempotency_key=key)
        assert pending is not None and pending.status is PaymentStatus.PENDING
        retried = await authorize(impatient, key, token=token)  # a retry while pending must not charge again
        assert retried.status is PaymentStatus.PENDING
        assert retried.provider_reference == pending.provider_reference

        delivery = await receiver.event(event_type, key)
        assert_signed(delivery)
        assert delivery.event["data"]["status"] == outcome
        assert delivery.event["data"]["reference_hint"] == f"order-{key}"
        settled = await impatient.lookup(idempotency_key=key)
        assert settled is not None
        assert (settled.status, settled.provider_reference) == (outcome, pending.provider_reference)
        assert (await payments(http))["total_charges"] == 1


async def test_latency_beyond_client_timeout_is_unknown_but_executed(
    sandbox: SandboxServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await configure(http, latency_ms=500)
    async with HttpPaymentProvider(sandbox.base_url, timeout_seconds=0.2) as impatient:
        with pytest.raises(PaymentProviderUnavailable):
            await impatient.authorize(
                idempotency_key="k-slow", amount=Decimal(5), currency=EUR, token="tok_ok", reference_hint="o"
            )
        await configure(http, latency_ms=0)
        await receiver.event(
            "payment.authorized", "k-slow"
        )  # the sandbox finished what the client gave up on
        found = await impatient.lookup(idempotency_key="k-slow")
        assert found is not None and found.status is PaymentStatus.AUTHORIZED


async def test_lookup_of_unknown_key_is_none(provider: HttpPaymentProvider) -> None:
    assert await provider.lookup(idempotency_key="never-sent") is None


async def test_unreachable_provider_is_unavailable() -> None:
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        async with HttpPaymentProvider(f"http://127.0.0.1:{port}", timeout_seconds=0.5) as provider:
            with pytest.raises(PaymentProviderUnavailable):
                await provider.lookup(idempotency_key="k")


# -- capture, void, refund ----------------------------------------------------------


async def test_capture_then_refund(provider: HttpPaymentProvider, receiver: Receiver) -> None:
    ref = (await authorize(provider, "k-a", amount="100.00")).provider_reference
    assert ref is not None

    captured = await provider.capture(idempotency_key="k-c", provider_reference=ref, amount=Decimal("80.00"))
    assert (captured.status, captured.amount, captured.provider_reference) == (
        PaymentStatus.CAPTURED,
        Decimal("80.00"),
        ref,
    )
    refunded = await provider.refund(idempotency_key="k-r", provider_reference=ref, amount=Decimal("80.00"))
    assert (refunded.status, refunded.amount) == (PaymentStatus.REFUNDED, Decimal("80.00"))
    again = await provider.refund(idempotency_key="k-r", provider_reference=ref, amount=Decimal("80.00"))
    assert again == refunded

    await receiver.wait_for(lambda ds: len(ds) == 3)
    events = sorted((d.event for d in receiver.deliveries), key=lambda e: e["data"]["sequence"])
    assert [(e["type"], e["data"]["sequence"]) for e in events] == [
        ("payment.authorized", 1),
        ("payment.captured", 2),
        ("payment.refunded", 3),
    ]


async def test_void(provider: HttpPaymentProvider, receiver: Receiver) -> None:
    ref = (await authorize(provider, "k-a", amount="30.00")).provider_reference
    assert ref is not None

    voided = await provider.void(idempotency_key="k-v", provider_reference=ref)

    assert (voided.status, voided.amount, voided.currency) == (PaymentStatus.VOIDED, Decimal("30.00"), EUR)
    assert_signed(await receiver.event("payment.voided", "k-v"))


async def test_illegal_changes_fail(provider: HttpPaymentProvider) -> None:
    authorized = (await authorize(provider, "k-a", amount="50.00")).provider_reference
    declined = (await authorize(provider, "k-d", token="tok_decline")).provider_reference
    assert authorized is not None and declined is not None

    async def reason(result: PaymentResult) -> str | None:
        assert result.status is PaymentStatus.FAILED
        return result.decline_reason

    p = provider
    assert await reason(
        await p.refund(idempotency_key="1", provider_reference=authorized, amount=Decimal(1))
    ) == ("payment_not_captured")
    assert await reason(
        await p.capture(idempotency_key="2", provider_reference=authorized, amount=Decimal(51))
    ) == ("amount_exceeds_authorized")
    assert await reason(
        await p.capture(idempotency_key="3", provider_reference=declined, amount=Decimal(1))
    ) == ("payment_not_authorized")
    assert (
        await reason(await p.void(idempotency_key="4", provider_reference="pay_missing"))
        == "payment_not_found"
    )

    await p.capture(idempotency_key="5", provider_reference=authorized, amount=Decimal(20))
    assert (
        await reason(await p.void(idempotency_key="6", provider_reference=authorized))
        == "payment_not_authorized"
    )
    assert await reason(
        await p.capture(idempotency_key="7", provider_reference=authorized, amount=Decimal(1))
    ) == ("payment_not_authorized")
    assert await reason(
        await p.refund(idempotency_key="8", provider_reference=authorized, amount=Decimal(21))
    ) == ("amount_exceeds_captured")
    assert (await p.lookup(idempotency_key="8")) == await p.refund(
        idempotency_key="8", provider_reference=authorized, amount=Decimal(21)
    )


async def test_fail_voids(provider: HttpPaymentProvider, http: httpx.AsyncClient) -> None:
    ref = (await authorize(provider, "k-a")).provider_reference
    assert ref is not None
    await configure(http, fail_voids=True)

    failed = await provider.void(idempotency_key="k-v1", provider_reference=ref)
    assert (failed.status, failed.decline_reason) == (PaymentStatus.FAILED, "void_failed")

    await configure(http, fail_voids=False)
    assert (
        await provider.void(idempotency_key="k-v2", provider_reference=ref)
    ).status is PaymentStatus.VOIDED


async def test_malformed_request_is_invalid(provider: HttpPaymentProvider, http: httpx.AsyncClient) -> None:
    with pytest.raises(InvalidPaymentRequest):
        await authorize(provider, "k-neg", amount="-1")
    with pytest.raises(InvalidPaymentRequest):
        await provider.authorize(
            idempotency_key="", amount=Decimal(1), currency=EUR, token="tok_ok", reference_hint="o"
        )
    assert (await http.post("/_sandbox/config", json={"no_such_field": 1})).status_code == 400
    assert (await http.post("/_sandbox/config", json={"latency_ms": True})).status_code == 400
    assert (await payments(http))["payments"] == []


# -- webhook delivery ------------------------------------------------------------------


async def test_webhook_delivery_is_retried(
    provider: HttpPaymentProvider, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.fail_next = 2

    await authorize(provider, "k-retry")

    assert_signed(await receiver.event("payment.authorized", "k-retry"))
    [record] = (await http.get("/_sandbox/webhooks")).json()["webhooks"]
    assert (record["attempts"], record["delivered"], record["last_status"]) == (3, True, 204)


async def test_replay_out_of_order(
    provider: HttpPaymentProvider, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    await configure(http, webhooks_enabled=False)
    ref = (await authorize(provider, "k-a")).provider_reference
    assert ref is not None
    await provider.capture(idempotency_key="k-c", provider_reference=ref, amount=Decimal(1))
    records = (await http.get("/_sandbox/webhooks")).json()["webhooks"]
    assert [r["event"]["type"] for r in records] == ["payment.authorized", "payment.captured"]
    assert not any(r["delivered"] for r in records)
    assert receiver.deliveries == []

    await configure(http, webhooks_enabled=True)
    for record in (records[1], records[0], records[0]):  # newest first, then a duplicate
        replayed = (
            await http.post("/_sandbox/webhooks/replay", json={"event_id": record["event"]["id"]})
        ).json()
        assert replayed == {"event_id": record["event"]["id"], "delivered": True, "status": 204}

    ids = [d.event["id"] for d in receiver.deliveries]
    assert ids == [records[1]["event"]["id"], records[0]["event"]["id"], records[0]["event"]["id"]]
    assert [d.event["data"]["sequence"] for d in receiver.deliveries] == [2, 1, 1]
    for delivery in receiver.deliveries:
        assert_signed(delivery)
    assert (await http.post("/_sandbox/webhooks/replay", json={"event_id": "evt_nope"})).status_code == 404


async def test_stop_releases_held_responses_and_cancels_deliveries(receiver: Receiver) -> None:
    server = SandboxServer(
        SandboxConfig(webhook_url=receiver.url, timeout_hold_seconds=30, webhook_delay_seconds=30)
    )
    url = await server.start()
    async with HttpPaymentProvider(url, timeout_seconds=10) as provider:
        ok = await authorize(provider, "k-stop-ok")  # its webhook now waits 30 s
        held = asyncio.create_task(authorize(provider, "k-stop-held", token="tok_timeout"))
        async with httpx.AsyncClient(base_url=url, trust_env=False) as sandbox_http:

            async def held_at_the_sandbox() -> bool:
                listed = (await payments(sandbox_http))["payments"]
                return any(p["idempotency_key"] == "k-stop-held" for p in listed)

            await eventually(held_at_the_sandbox, message="the held authorization never reached the sandbox")

        async with asyncio.timeout(2):
            await server.stop()
            result = await held

    assert ok.status is PaymentStatus.AUTHORIZED
    assert result.status is PaymentStatus.PENDING
    assert not any(d.event["data"]["idempotency_key"].startswith("k-stop") for d in receiver.deliveries)
