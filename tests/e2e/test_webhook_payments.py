"""``/webhooks/payments``: forged, stale, duplicate and out-of-order provider events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
from sqlalchemy import text

from commands.payments import SIGNATURE_HEADER, sign
from gateway.schema.ids import global_id
from tests.support.checkout import SANDBOX_HOLD, Shop

# Short payment timeouts and a large cost budget (see tests.support.checkout).
pytestmark = pytest.mark.checkout_settings


async def _post(
    shop: Shop, event: dict[str, Any], *, secret: str | None = None, at: int | None = None
) -> Any:
    body = json.dumps(event, separators=(",", ":")).encode()
    signature = sign(secret or shop.container.settings.webhook_secret, body, at or int(time.time()))
    return await shop.http.post(
        "/webhooks/payments",
        content=body,
        headers={SIGNATURE_HEADER: signature, "content-type": "application/json"},
    )


async def _provider_event(shop: Shop, order_gid: str) -> dict[str, Any]:
    """The sandbox's (undelivered) event for the order's authorization, once it settled."""
    order_id = order_gid.rsplit("/", 1)[1]

    async def present() -> bool:
        hooks = (await shop.sandbox.get("/_sandbox/webhooks")).json()["webhooks"]
        return any(h["event"]["data"]["reference_hint"] == order_id for h in hooks)

    await shop.eventually(present, timeout=SANDBOX_HOLD + 3)
    hooks = (await shop.sandbox.get("/_sandbox/webhooks")).json()["webhooks"]
    event: dict[str, Any] = next(
        h["event"] for h in hooks if h["event"]["data"]["reference_hint"] == order_id
    )
    return event


async def _confirmed_with_undelivered_event(shop: Shop) -> tuple[str, dict[str, Any]]:
    """A confirmed order (our own call's answer settled it) and its provider event, undelivered."""
    await shop.configure(webhooks_enabled=False)
    await shop.product("TEE", on_hand=2)
    payload = await shop.checkout(await shop.cart(("TEE", 1)), "k", token="tok_ok")
    assert payload["order"]["status"] == "CONFIRMED"
    order_gid: str = payload["order"]["id"]
    return order_gid, await _provider_event(shop, order_gid)


async def _kept_as_a_repeat(shop: Shop, order_gid: str, event: dict[str, Any], repeat: Any) -> None:
    """``repeat`` (the answer to ``event``) and a redelivery are duplicates; the order unchanged."""
    assert (repeat.status_code, repeat.json()["result"]) == (200, "duplicate")
    again = await _post(shop, event)
    assert (again.status_code, again.json()["result"]) == (200, "duplicate")
    assert await shop.order_event_types(order_gid) == ["OrderPlaced", "PaymentAuthorized", "OrderConfirmed"]


async def _pending_order(shop: Shop, token: str = "tok_timeout") -> str:
    await shop.configure(webhooks_enabled=False)
    await shop.product("TEE", on_hand=2)
    payload = await shop.checkout(await shop.cart(("TEE", 1)), "k", token=token)
    assert payload["order"]["status"] == "PAYMENT_PENDING"
    order_gid: str = payload["order"]["id"]
    return order_gid


async def test_forged_and_stale_signatures_are_refused(shop: Shop) -> None:
    order_gid = await _pending_order(shop)
    event = await _provider_event(shop, order_gid)
    forged = await _post(shop, event, secret="not-the-secret")
    assert forged.status_code == 400 and forged.json()["error"]["type"] == "invalid_signature"
    stale = await _post(shop, event, at=int(time.time()) - 301)
    assert stale.status_code == 400
    body = json.dumps(event).encode()
    unsigned = await shop.http.post("/webhooks/payments", content=body)
    assert unsigned.status_code == 400
    tampered = dict(event, data={**event["data"], "status": "DECLINED"})
    signature = sign(shop.container.settings.webhook_secret, body, int(time.time()))
    swapped = await shop.http.post(
        "/webhooks/payments", content=json.dumps(tampered).encode(), headers={SIGNATURE_HEADER: signature}
    )
    assert swapped.status_code == 400
    assert await shop.order_event_types(order_gid) == ["OrderPlaced", "PaymentOutcomeUnknown"]


async def test_duplicate_delivery_is_acknowledged_once(shop: Shop) -> None:
    order_gid = await _pending_order(shop)
    event = await _provider_event(shop, order_gid)
    first = await _post(shop, event)
    assert (first.status_code, first.json()["result"]) == (200, "applied")
    second = await _post(shop, event)
    assert (second.status_code, second.json()["result"]) == (200, "duplicate")
    assert await shop.order_event_types(order_gid) == [
        "OrderPlaced",
        "PaymentOutcomeUnknown",
        "PaymentAuthorized",
        "OrderConfirmed",
    ]


async def test_older_event_after_a_newer_one_is_ignored(shop: Shop) -> None:
    order_gid = await _pending_order(shop)
    authorized = await _provider_event(shop, order_gid)
    assert authorized["data"]["sequence"] == 1
    newer = {
        "id": "evt_newer_decline",
        "type": "payment.declined",
        "created": int(time.time()),
        "data": {**authorized["data"], "status": "DECLINED", "sequence": 2},
    }
    assert (await _post(shop, newer)).json()["result"] == "applied"
    late = await _post(shop, authorized)
    assert (late.status_code, late.json()["result"]) == (200, "stale")
    order = await shop.order(order_gid)
    assert (order.status.value, order.payment_status.value) == ("CANCELLED", "DECLINED")


async def test_unreadable_and_unknown_events(shop: Shop) -> None:
    garbage = await shop.http.post(
        "/webhooks/payments",
        content=b"not json",
        headers={
            SIGNATURE_HEADER: sign(shop.container.settings.webhook_secret, b"not json", int(time.time()))
        },
    )
    assert garbage.status_code == 400
    stranger = {
        "id": "evt_unknown",
        "type": "payment.authorized",
        "created": int(time.time()),
        "data": {
            "provider_reference": "pay_x",
            "idempotency_key": "authorize:not-ours",
            "reference_hint": "x",
            "amount": "1.00",
            "currency": "USD",
            "status": "AUTHORIZED",
            "sequence": 1,
        },
    }
    response = await _post(shop, stranger)
    assert (response.status_code, response.json()["result"]) == (200, "ignored")


async def test_an_event_repeating_the_recorded_answer_does_not_wait_for_the_orders_lock(shop: Shop) -> None:
    order_gid, event = await _confirmed_with_undelivered_event(shop)
    order_id = order_gid.rsplit("/", 1)[1]
    # Another settlement of the order holds its lock (as the checkout's own does when the
    # provider's webhook overtakes it): a pure repeat must not queue behind it.
    async with shop.container.engine.connect() as holder:
        await holder.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"order-{order_id}"}
        )
        repeat = await asyncio.wait_for(_post(shop, event), 10)
        await holder.rollback()
    await _kept_as_a_repeat(shop, order_gid, event, repeat)


async def test_a_repeat_is_kept_when_every_idle_session_has_died(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    order_gid, event = await _confirmed_with_undelivered_event(shop)
    # Every idle session of the gateway goes away (a database restart, an idle timeout): the
    # connections kept between commands and those in the pool are dead when the repeat comes.
    async with shop.container.engine.connect() as admin:
        killed = await admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
            )
        )
        assert killed.all()
    await asyncio.sleep(0.5)  # each driver reads its session's end from its socket
    with caplog.at_level(logging.WARNING, logger="commands.checkout.settle"):
        for _ in range(2):
            repeat = await _post(shop, event)
            assert (repeat.status_code, repeat.json()["result"]) == (200, "duplicate")
    # Not by the fallback: no dead connection was handed out.
    assert "webhook receipt without a transaction failed" not in caplog.text
    assert await shop.order_event_types(order_gid) == ["OrderPlaced", "PaymentAuthorized", "OrderConfirmed"]


async def test_a_repeat_whose_receipt_fails_outside_a_transaction_is_kept_in_one(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    order_gid, event = await _confirmed_with_undelivered_event(shop)
    async with shop.container.engine.connect() as admin:
        # The receipts table is locked, so the repeat's receipt waits; an operator then cancels
        # that statement (any failure of the statement would do).
        await admin.execute(text("LOCK TABLE payment_webhook_events IN ACCESS EXCLUSIVE MODE"))
        with caplog.at_level(logging.WARNING, logger="commands.checkout.settle"):
            posting = asyncio.create_task(_post(shop, event))
            for _ in range(200):
                # pg_stat_activity is read once per transaction: the lock holder's would not change.
                async with shop.container.engine.connect() as operator:
                    cancelled = await operator.execute(
                        text(
                            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND wait_event_type = 'Lock' "
                            "AND query LIKE '%INSERT INTO payment_webhook_events%'"
                        )
                    )
                    if cancelled.all():
                        break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the receipt never waited on the lock")
            # Settled in a transaction instead: it waits for the lock like the first try.
            for _ in range(500):
                if "webhook receipt without a transaction failed" in caplog.text:
                    break
                await asyncio.sleep(0.02)
            assert "webhook receipt without a transaction failed" in caplog.text
            await admin.rollback()
            repeat = await asyncio.wait_for(posting, 30)
    await _kept_as_a_repeat(shop, order_gid, event, repeat)


async def test_the_webhook_for_a_payment_being_settled_here_waits_for_it_instead_of_the_lock(
    shop: Shop,
) -> None:
    # The provider's answer comes 0.4 s after the call (the tests' call timeout is 1 s): time to
    # lock the attempt's row once the order is placed.
    await shop.configure(webhooks_enabled=False, latency_ms=400)
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 1))
    checkout = asyncio.create_task(shop.checkout(cart, "k", token="tok_ok"))

    order_ids: list[str] = []

    async def placed() -> bool:
        async with shop.container.engine.connect() as conn:
            found = await conn.execute(text("SELECT order_id::text FROM payment_attempts"))
            order_ids.extend(found.scalars())
        return bool(order_ids)

    await shop.eventually(placed)
    async with shop.container.engine.connect() as admin:
        # The settlement of our own call's answer stops at the attempt's row, under the order's lock.
        await admin.execute(text("SELECT 1 FROM payment_attempts FOR UPDATE"))
        event = await _provider_event(shop, global_id("Order", order_ids[0]))

        async def waiting(kind: str) -> int:
            async with shop.container.engine.connect() as conn:
                found = await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND wait_event = :kind"
                    ),
                    {"kind": kind},
                )
                return int(found.scalar_one())

        async def settlement_stopped() -> bool:
            return await waiting("transactionid") == 1

        await shop.eventually(settlement_stopped)
        settlement = shop.container.services.settlement
        assert settlement.settling == {f"authorize:{order_ids[0]}"}
        webhook = asyncio.create_task(_post(shop, event))
        await asyncio.sleep(1.0)
        assert not webhook.done()
        assert await waiting("advisory") == 0, "the webhook queued on the order's lock"
        await admin.rollback()
    repeat = await asyncio.wait_for(webhook, 30)
    assert (repeat.status_code, repeat.json()["result"]) == (200, "duplicate")
    assert (await asyncio.wait_for(checkout, 30))["order"]["status"] == "CONFIRMED"
