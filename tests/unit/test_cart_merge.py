"""Attaching a guest cart to a customer, pure: bind, merge, repeat."""

from __future__ import annotations

from decimal import Decimal

import pytest

from commands.domain import cart as domain
from commands.domain.cart import CatalogPrice, LineRequest
from commands.errors import DomainError
from commands.events.base import Event
from commands.events.cart import CartCustomerAttached, CartLinesMergedIn, CartMerged

PRICES = {
    "TEE": CatalogPrice("TEE", Decimal("19.99"), "USD", True),
    "MUG": CatalogPrice("MUG", Decimal("8.50"), "USD", True),
    "EUR": CatalogPrice("EUR", Decimal("30.00"), "EUR", True),
}


def cart(cart_id: str, *lines: LineRequest, customer_id: str | None = None) -> domain.Cart:
    return domain.fold([domain.create(cart_id, customer_id, None, lines, PRICES)])


def apply(state: domain.Cart, events: tuple[Event, ...]) -> domain.Cart:
    return domain.fold(events, state)


def test_attach_without_an_active_cart_binds_the_guest_cart() -> None:
    guest = cart("g", LineRequest("TEE", 1))
    plan = domain.attach(guest, "cust-1", None, PRICES)
    assert plan.survivor_id == "g"
    assert plan.guest_events == (CartCustomerAttached("cust-1"),) and plan.survivor_events == ()
    bound = apply(guest, plan.guest_events)
    assert (bound.customer_id, bound.status, bound.version) == ("cust-1", "ACTIVE", 2)
    # Repeating binds nothing new.
    assert domain.attach(bound, "cust-1", None, PRICES) == domain.AttachPlan("g")


def test_attach_merges_into_the_customers_active_cart_capping_quantities() -> None:
    guest = cart("g", LineRequest("TEE", 500), LineRequest("MUG", 2))
    survivor = cart("s", LineRequest("TEE", 600), customer_id="cust-1")
    repriced = {**PRICES, "MUG": CatalogPrice("MUG", Decimal("7.00"), "USD", True)}
    plan = domain.attach(guest, "cust-1", survivor, repriced)
    assert plan.survivor_id == "s"
    assert plan.guest_events == (CartMerged(into_cart_id="s", customer_id="cust-1"),)
    (merged_in,) = plan.survivor_events
    assert isinstance(merged_in, CartLinesMergedIn) and merged_in.from_cart_id == "g"
    after = apply(survivor, plan.survivor_events)
    assert [(x.line_id, x.sku, x.quantity, x.unit_price) for x in after.lines] == [
        ("1", "TEE", 999, Decimal("19.99")),
        ("2", "MUG", 2, Decimal("7.00")),
    ]
    assert after.version == 2
    merged = apply(guest, plan.guest_events)
    assert (merged.status, merged.merged_into, merged.customer_id) == ("MERGED", "s", "cust-1")
    # Repeating returns the survivor and decides nothing.
    assert domain.attach(merged, "cust-1", after, repriced) == domain.AttachPlan("s")


def test_merge_leaves_behind_lines_over_the_line_limit() -> None:
    prices = {f"S{i}": CatalogPrice(f"S{i}", Decimal(1), "USD", True) for i in range(102)}
    survivor = domain.fold(
        [domain.create("s", "cust-1", None, [LineRequest(f"S{i}", 1) for i in range(99)], prices)]
    )
    guest = domain.fold(
        [domain.create("g", None, None, [LineRequest(f"S{i}", 1) for i in range(98, 102)], prices)]
    )
    (merged_in,) = domain.attach(guest, "cust-1", survivor, prices).survivor_events
    assert isinstance(merged_in, CartLinesMergedIn)
    assert [x.sku for x in merged_in.lines] == ["S98", "S99"]
    assert merged_in.dropped_skus == ("S100", "S101")
    assert len(apply(survivor, (merged_in,)).lines) == domain.MAX_LINES


def test_a_survivor_in_another_currency_keeps_both_carts() -> None:
    guest = cart("g", LineRequest("EUR", 1))
    survivor = cart("s", LineRequest("TEE", 1), customer_id="cust-1")
    plan = domain.attach(guest, "cust-1", survivor, PRICES)
    assert plan == domain.AttachPlan("g", guest_events=(CartCustomerAttached("cust-1"),))


def test_attach_refuses_other_customers_carts_and_finished_carts() -> None:
    owned = cart("o", customer_id="cust-2")
    with pytest.raises(DomainError) as exc:
        domain.attach(owned, "cust-1", None, PRICES)
    assert (exc.value.code, exc.value.field) == ("NOT_FOUND", ["cartId"])
    done = cart("d", LineRequest("TEE", 1))
    done = apply(done, (domain.check_out(done, "order-1"),))
    with pytest.raises(DomainError) as exc:
        domain.attach(done, "cust-1", None, PRICES)
    assert exc.value.code == "CART_NOT_ACTIVE"
