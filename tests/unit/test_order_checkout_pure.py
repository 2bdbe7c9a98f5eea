"""Pure parts of checkout: repricing, input validation, webhook parsing, stored outcomes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from commands.checkout.saga import validate
from commands.checkout.webhooks import InvalidWebhook, parse
from commands.domain.cart import Cart, CartEmpty, Line
from commands.domain.countries import COUNTRY_CODES
from commands.domain.pricing import PriceChanged, Variant, price_cart
from commands.errors import ValidationErrors
from commands.events.order import AddressData
from commands.messages.orders import CompleteCheckout, ErrorInfo, OrderOutcome

ADDRESS = AddressData("Ada", "1 Way", None, "London", "N1", "GB")


def _cart(*lines: tuple[str, int, str], currency: str = "USD") -> Cart:
    return Cart(
        cart_id="c",
        version=1,
        currency_code=currency,
        lines=tuple(Line(str(i), sku, q, Decimal(p)) for i, (sku, q, p) in enumerate(lines, 1)),
    )


def _variant(sku: str, price: str, *, currency: str = "USD", active: bool = True) -> Variant:
    return Variant(sku, f"Title {sku}", Decimal(price), currency, active)


def test_price_cart_uses_catalog_titles_and_rounds_to_the_currency() -> None:
    priced = price_cart(
        _cart(("A", 3, "19.99"), ("B", 1, "0.5")), {"A": _variant("A", "19.9900"), "B": _variant("B", "0.50")}
    )
    assert [(line.title, line.line_total) for line in priced.lines] == [
        ("Title A", Decimal("59.97")),
        ("Title B", Decimal("0.50")),
    ]
    assert priced.total == Decimal("60.47") and priced.currency == "USD"
    yen = price_cart(_cart(("Y", 2, "500"), currency="JPY"), {"Y": _variant("Y", "500", currency="JPY")})
    assert yen.total == Decimal("1000")


def test_price_cart_names_every_line_that_cannot_be_bought() -> None:
    cart = _cart(("A", 1, "10"), ("B", 1, "5"), ("C", 1, "7"), ("D", 1, "1"))
    variants = {
        "A": _variant("A", "12"),
        "B": _variant("B", "5", active=False),
        "D": _variant("D", "1", currency="EUR"),
    }
    with pytest.raises(ValidationErrors) as refused:
        price_cart(cart, variants)
    errors = refused.value.errors
    assert [e.code for e in errors] == ["PRICE_CHANGED", "NOT_FOUND", "NOT_FOUND", "PRICE_CHANGED"]
    assert "A" in errors[0].message and "10.00" in errors[0].message and "12.00" in errors[0].message
    assert isinstance(errors[0], PriceChanged)
    with pytest.raises(CartEmpty):
        price_cart(_cart(), {})


def _command(**changes: object) -> CompleteCheckout:
    base: dict[str, object] = {
        "cart_id": "c",
        "idempotency_key": "k",
        "email": "ada@example.com",
        "shipping_address": ADDRESS,
        "payment_token": "tok_ok",
    }
    return CompleteCheckout(**{**base, **changes})  # type: ignore[arg-type]


def test_validate_reports_every_bad_field() -> None:
    validate(_command())
    bad_address = AddressData("", "1 Way", None, "London", "N1", "gb")
    with pytest.raises(ValidationErrors) as refused:
        validate(_command(idempotency_key="é", email="nope", shipping_address=bad_address, payment_token=""))
    assert [e.field for e in refused.value.errors] == [
        ["idempotencyKey"],
        ["email"],
        ["shippingAddress", "name"],
        ["shippingAddress", "countryCode"],
        ["payment", "token"],
    ]


@pytest.mark.parametrize("code", ["XX", "ZZ", "UK", "EU", "gb", "GBR", ""])
def test_a_country_code_must_be_an_assigned_one(code: str) -> None:
    address = AddressData("Ada", "1 Way", None, "London", "N1", code)
    with pytest.raises(ValidationErrors) as refused:
        validate(_command(shipping_address=address))
    assert [(e.field, e.message) for e in refused.value.errors] == [
        (["shippingAddress", "countryCode"], "countryCode must be an ISO 3166-1 country code, like GB")
    ]


def test_the_country_list_is_the_assigned_iso_3166_1_codes() -> None:
    assert len(COUNTRY_CODES) == 249
    assert {"GB", "DE", "US", "FR", "JP", "AX", "CW", "SS", "XK"} - COUNTRY_CODES == {"XK"}


def test_webhook_parsing() -> None:
    event = {
        "id": "evt_1",
        "type": "payment.declined",
        "created": 1,
        "data": {
            "provider_reference": "pay_1",
            "idempotency_key": "authorize:x",
            "reference_hint": "x",
            "amount": "1.00",
            "currency": "USD",
            "status": "DECLINED",
            "sequence": 2,
        },
    }
    parsed = parse(json.dumps(event).encode())
    assert parsed.key == "authorize:x"
    assert (parsed.outcome.status, parsed.outcome.provider_reference) == ("DECLINED", "pay_1")
    assert parsed.outcome.reason is not None
    assert (parsed.receipt.event_id, parsed.receipt.sequence) == ("evt_1", 2)
    for broken in [
        b"[]",
        b"{}",
        b"\xff",
        json.dumps({**event, "data": {**event["data"], "status": "WEIRD"}}).encode(),
        json.dumps({**event, "data": {**event["data"], "sequence": "2"}}).encode(),
    ]:
        with pytest.raises(InvalidWebhook):
            parse(broken)


def test_outcome_round_trips_through_its_stored_form() -> None:
    outcome = OrderOutcome("o-1", 42, (ErrorInfo("PAYMENT_DECLINED", "declined", ("payment", "token")),))
    assert OrderOutcome.from_json(json.loads(json.dumps(outcome.to_json()))) == outcome
    error = outcome.to_error()
    assert error is not None and error.code == "PAYMENT_DECLINED"
    assert OrderOutcome(None, None).to_error() is None
