"""A checkout that dies between phases resumes from its recovery point on retry: one order, one charge."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from commands.checkout import payment_attempts as payment_ops
from commands.checkout.reconcile import ReconcileReport, reconcile
from tests.helpers import error_codes
from tests.support.checkout import ADDRESS, CHECKOUT, META, Shop

# Short payment timeouts and a large cost budget (see tests.support.checkout).
pytestmark = pytest.mark.checkout_settings


def _fail_once(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("process died here")
        return await original(*args, **kwargs)

    return flaky


async def _raw_checkout(shop: Shop, cart: str, key: str) -> dict[str, Any]:
    variables = {
        "input": {
            "cartId": cart,
            "idempotencyKey": key,
            "email": "ada@example.com",
            "shippingAddress": ADDRESS,
            "payment": {"token": "tok_ok"},
        }
    }
    return await shop.gql(CHECKOUT, variables)


async def test_crash_while_recording_the_payment_outcome_then_retry(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    await shop.configure(webhooks_enabled=False)
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 1))
    settlement = shop.container.services.settlement
    monkeypatch.setattr(settlement, "_settle_once", _fail_once(settlement._settle_once))

    crashed = await _raw_checkout(shop, cart, "crashy")
    assert error_codes(crashed) == ["INTERNAL_SERVER_ERROR"]
    # Phase 1 committed, the provider authorized, the outcome was never recorded.
    assert await shop.count_events("OrderPlaced") == 1
    assert await shop.stock("TEE") == (2, 1)
    assert (await shop.provider_payments())["total_charges"] == 1

    resumed = await shop.checkout(cart, "crashy")
    assert resumed["userErrors"] == [] and resumed["order"]["status"] == "CONFIRMED"
    assert await shop.count_events("OrderPlaced") == 1
    payments = await shop.provider_payments()
    assert payments["total_charges"] == 1 and len(payments["payments"]) == 1
    assert await shop.checkout(cart, "crashy") == resumed


async def test_crash_before_the_provider_call_then_retry(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 1))
    monkeypatch.setattr(payment_ops, "execute", _fail_once(payment_ops.execute))
    assert error_codes(await _raw_checkout(shop, cart, "early")) == ["INTERNAL_SERVER_ERROR"]
    assert (await shop.provider_payments())["total_charges"] == 0

    resumed = await shop.checkout(cart, "early")
    assert resumed["order"]["status"] == "CONFIRMED"
    assert await shop.count_events("OrderPlaced") == 1
    assert (await shop.provider_payments())["total_charges"] == 1


async def test_an_authorization_never_sent_is_given_up_by_reconciliation(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    cart = await _lost_authorization(shop, monkeypatch, "abandoned", quantity=2)
    # The first look that finds nothing at the provider only notes it: a call may be on its way.
    first = await _reconcile(shop, timedelta(0))
    assert (first.missing, first.abandoned) == (1, 0)
    assert await shop.stock("TEE") == (2, 2)
    report = await _reconcile(shop, timedelta(0))
    assert report.abandoned == 1
    assert await shop.stock("TEE") == (2, 0)
    # A late retry of the buyer's request does not charge the card for the given-up order.
    retry = await shop.checkout(cart, "abandoned")
    assert retry["order"]["status"] == "CANCELLED"
    assert [e["code"] for e in retry["userErrors"]] == ["PAYMENT_DECLINED"]
    assert (await shop.provider_payments())["total_charges"] == 0


async def test_an_authorization_is_given_up_only_once_missing_for_the_whole_wait(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    cart = await _lost_authorization(shop, monkeypatch, "lost", quantity=1)
    for _ in range(2):
        report = await _reconcile(shop, timedelta(minutes=2))
        assert (report.missing, report.abandoned) == (1, 0)
    key = await _authorization_key(shop)
    # Two minutes pass (the attempt's times moved back).
    await _time_passes(shop, key, seconds=121)
    report = await _reconcile(shop, timedelta(minutes=2))
    assert (report.missing, report.abandoned) == (0, 1)
    assert await shop.stock("TEE") == (2, 0)
    again = await shop.checkout(cart, "after-the-lost-one")
    assert again["userErrors"] == [] and again["order"]["status"] == "CONFIRMED"


async def test_sending_an_authorization_again_starts_its_wait_over(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _lost_authorization(shop, monkeypatch, "lost", quantity=1)
    assert (await _reconcile(shop, timedelta(0))).missing == 1
    key = await _authorization_key(shop)
    await _time_passes(shop, key, seconds=3600)
    # The buyer's retry sends it again (its claim touched here, the send itself lost once more).
    async with shop.container.engine.begin() as conn:
        assert await payment_ops.begin_send(conn, key) is not None
    async with shop.container.engine.connect() as conn:
        sent = await payment_ops.by_key(conn, key)
    assert sent is not None and sent.provider_missing_since is None
    # Its wait starts over: the next look is a first one again.
    report = await _reconcile(shop, timedelta(0))
    assert (report.missing, report.abandoned) == (1, 0)
    assert (await _reconcile(shop, timedelta(0))).abandoned == 1


async def test_two_reconcilers_at_once_give_a_lost_authorization_up_once(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    cart = await _lost_authorization(shop, monkeypatch, "lost", quantity=2)
    wait = timedelta(minutes=2)
    first = await asyncio.gather(*(_reconcile(shop, wait) for _ in range(3)))
    assert sum(r.abandoned for r in first) == 0 and sum(r.missing for r in first) == 3
    await _time_passes(shop, await _authorization_key(shop), seconds=121)
    later = await asyncio.gather(*(_reconcile(shop, wait) for _ in range(3)))
    assert sum(r.abandoned for r in later) == 1, later
    assert await shop.stock("TEE") == (2, 0)
    again = await shop.checkout(cart, "after-the-lost-one")
    assert again["order"]["status"] == "CONFIRMED"
    assert (await shop.provider_payments())["total_charges"] == 1


async def _lost_authorization(shop: Shop, monkeypatch: pytest.MonkeyPatch, key: str, *, quantity: int) -> str:
    """A checkout of two TEEs' stock whose process dies before the authorization is sent (so
    the provider never receives it); its cart."""
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", quantity))
    monkeypatch.setattr(payment_ops, "execute", _fail_once(payment_ops.execute))
    assert error_codes(await _raw_checkout(shop, cart, key)) == ["INTERNAL_SERVER_ERROR"]
    return cart


async def _reconcile(shop: Shop, abandon_after: timedelta) -> ReconcileReport:
    return await reconcile(
        shop.container.services.settlement, META, older_than=timedelta(0), abandon_after=abandon_after
    )


async def _authorization_key(shop: Shop) -> str:
    async with shop.container.engine.connect() as conn:
        key = (
            await conn.execute(
                text("SELECT idempotency_key FROM payment_attempts WHERE operation = 'authorize'")
            )
        ).scalar_one()
    return str(key)


async def _time_passes(shop: Shop, key: str, *, seconds: int) -> None:
    async with shop.container.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE payment_attempts SET updated_at = updated_at - make_interval(secs => :s), "
                "provider_missing_since = provider_missing_since - make_interval(secs => :s) "
                "WHERE idempotency_key = :k"
            ),
            {"k": key, "s": seconds},
        )


async def test_a_note_of_never_received_is_dropped_once_the_provider_has_the_operation(shop: Shop) -> None:
    await shop.configure(webhooks_enabled=False)  # only reconciliation settles it
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 1))
    # The provider answers after our call stopped waiting: it has the operation.
    pending = await shop.checkout(cart, "slow", token="tok_timeout")
    assert pending["order"]["status"] == "PAYMENT_PENDING"
    key = await _authorization_key(shop)
    async with shop.container.engine.begin() as conn:
        noted = await conn.execute(
            text(
                "UPDATE payment_attempts SET provider_missing_since = now() - interval '1 hour' "
                "WHERE idempotency_key = :k AND status IN ('PENDING', 'UNKNOWN')"
            ),
            {"k": key},
        )
        assert noted.rowcount == 1
    report = await _reconcile(shop, timedelta(0))
    assert (report.missing, report.abandoned) == (0, 0)
    async with shop.container.engine.connect() as conn:
        found = await payment_ops.by_key(conn, key)
    assert found is not None and found.provider_missing_since is None

    async def confirmed() -> bool:
        await _reconcile(shop, timedelta(0))
        return (await shop.order(pending["order"]["id"])).status.value == "CONFIRMED"

    await shop.eventually(confirmed, timeout=10)
