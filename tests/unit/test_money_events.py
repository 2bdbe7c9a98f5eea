"""Orders keep their stored JSON: totals and an address region appear only when there are some."""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec

from commands.events.base import decode_event_json, encode_event
from commands.events.order import AddressData, OrderLineData, OrderPlaced, OrderTotalsData, TaxLineData

_PLACED = OrderPlaced(
    order_id="o-1",
    number="7",
    customer_id=None,
    cart_id="c-1",
    email="a@example.com",
    currency="EUR",
    lines=(OrderLineData("A", "A", 1, Decimal("10.00"), Decimal("10.00")),),
    subtotal=Decimal("10.00"),
    total=Decimal("10.00"),
    shipping_address=AddressData("Ada", "1 Way", None, "Berlin", "10115", "DE"),
    payment_attempt_id="pa-1",
    reservation_expires_at=None,
)


def test_an_order_without_totals_stores_the_same_fields_as_before() -> None:
    stored = json.loads(encode_event(_PLACED))
    assert "totals" not in stored and "region" not in stored["shipping_address"]
    assert decode_event_json("OrderPlaced", encode_event(_PLACED)) == _PLACED


def test_totals_and_region_round_trip() -> None:
    totals = OrderTotalsData(
        subtotal=Decimal("10.00"),
        shipping=Decimal("4.90"),
        discounts=Decimal("1.00"),
        tax=Decimal("2.63"),
        total=Decimal("16.53"),
        tax_lines=(TaxLineData(Decimal("0.19"), Decimal("13.90"), Decimal("2.63")),),
        shipping_method="standard",
        discount_code="ONE",
    )
    address = AddressData("Ada", "1 Way", None, "Munich", "80331", "DE", region="BY")
    placed = msgspec.structs.replace(_PLACED, totals=totals, shipping_address=address)
    raw = encode_event(placed)
    assert json.loads(raw)["totals"]["tax_lines"] == [{"rate": "0.19", "base": "13.90", "amount": "2.63"}]
    assert decode_event_json("OrderPlaced", raw) == placed
