"""A checkout that dies between phases resumes from its recovery point on retry: one order, one charge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from commands.checkout import payment_attempts as payment_ops
from commands.checkout.reconcile import reconcile
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
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 2))
    monkeypatch.setattr(payment_ops, "execute", _fail_once(payment_ops.execute))
    assert error_codes(await _raw_checkout(shop, cart, "abandoned")) == ["INTERNAL_SERVER_ERROR"]
    report = await reconcile(
        shop.container.services.settlement, META, older_than=timedelta(0), abandon_after=timedelta(0)
    )
    assert report.abandoned == 1
    assert await shop.stock("TEE") == (2, 0)
    # A late retry of the buyer's request does not charge the card for the given-up order.
    retry = await shop.checkout(cart, "abandoned")
    assert retry["order"]["status"] == "CANCELLED"
    assert [e["code"] for e in retry["userErrors"]] == ["PAYMENT_DECLINED"]
    assert (await shop.provider_payments())["total_charges"] == 0
