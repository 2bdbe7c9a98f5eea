"""A provider's raw error body never reaches buyers: our own messages out, the raw text to the logs."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from commands.checkout import decline_messages
from commands.checkout.payment_attempts import FAILED, Outcome
from commands.checkout.saga import _outcome
from commands.checkout.settle import APPLIED, Settled
from commands.domain.order import Order, OrderStatus, PaymentStatus

RAW_BODY = '{"error": {"type": "invalid_request", "message": "merchant acct_9 key sk_live_abc at db-7"}}'
PROVIDER_REASON = f"invalid_request: provider refused the request (400): {RAW_BODY}"


def _declined_order() -> Order:
    return Order(
        order_id="o-1",
        number="1001",
        customer_id="c-1",
        cart_id="cart-1",
        currency="USD",
        total=Decimal("10.00"),
        status=OrderStatus.CANCELLED,
        payment_status=PaymentStatus.DECLINED,
        provider_reference=None,
        payment_attempt_id="a-1",
        lines=(),
        version=3,
        cancelled_by="payment",
    )


def _buyer_message(reason: str | None) -> str:
    settled = Settled(APPLIED, _declined_order(), None, Outcome(FAILED, reason=reason), 7)
    outcome = _outcome("o-1", settled)
    assert [e.code for e in outcome.errors] == ["PAYMENT_DECLINED"]
    return outcome.errors[0].message


def test_a_raw_provider_error_is_not_shown_to_the_buyer() -> None:
    message = _buyer_message(PROVIDER_REASON)
    assert message == "the payment was declined; try another card"
    for leaked in ("sk_live", "acct_9", "invalid_request", "400", "{"):
        assert leaked not in message


def test_known_decline_codes_read_in_our_words() -> None:
    assert (
        _buyer_message("card_declined")
        == "the payment was declined (the card was declined); try another card"
    )
    assert "card has insufficient funds" in _buyer_message("insufficient_funds")
    assert _buyer_message(None) == "the payment was declined; try another card"
    assert _buyer_message("<script>x</script>") == "the payment was declined; try another card"


def test_the_recorded_reason_is_ours_and_the_raw_one_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="commands.checkout.payments"):
        assert decline_messages.recorded_reason(PROVIDER_REASON, "o-1") == "declined"
    assert any(getattr(r, "provider_reason", None) == PROVIDER_REASON for r in caplog.records)
    assert decline_messages.recorded_reason("card_declined", "o-1") == "card_declined"
    assert decline_messages.recorded_reason(None, "o-1") == "declined"
