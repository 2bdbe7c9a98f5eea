"""The cart aggregate, pure: fold, decisions and every validation rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from commands.domain import cart as domain
from commands.domain.cart import CartActor, CatalogPrice, LineRequest, QuantityChange
from commands.errors import DomainError, ValidationErrors
from commands.events.base import Event, decode_event
from commands.events.cart import CartCreated, CartLineQuantitiesChanged, CartLinesAdded

PRICES = {
    "TEE": CatalogPrice("TEE", Decimal("19.99"), "USD", True),
    "MUG": CatalogPrice("MUG", Decimal("8.50"), "USD", True),
    "OLD": CatalogPrice("OLD", Decimal("5.00"), "USD", False),
    "EUR": CatalogPrice("EUR", Decimal("30.00"), "EUR", True),
}


def new_cart(*lines: LineRequest, customer_id: str | None = None) -> domain.Cart:
    return domain.fold([domain.create("c1", customer_id, None, lines, PRICES)])


def then(cart: domain.Cart, event: Event) -> domain.Cart:
    return domain.evolve(cart, event)


def errors_of(exc: pytest.ExceptionInfo[DomainError]) -> list[tuple[str, list[str] | None]]:
    err = exc.value
    items = err.errors if isinstance(err, ValidationErrors) else [err]
    return [(e.code, e.field) for e in items]


def test_create_folds_to_version_one_with_captured_prices() -> None:
    cart = new_cart(LineRequest("TEE", 2), LineRequest("MUG", 1))
    assert (cart.version, cart.status, cart.currency_code) == (1, "ACTIVE", "USD")
    assert [(x.line_id, x.sku, x.quantity, x.unit_price) for x in cart.lines] == [
        ("1", "TEE", 2, Decimal("19.99")),
        ("2", "MUG", 1, Decimal("8.50")),
    ]


def test_create_takes_the_currency_from_the_first_line_or_the_default() -> None:
    assert domain.create("c", None, None, [LineRequest("EUR", 1)], PRICES).currency_code == "EUR"
    assert domain.create("c", None, None, [], PRICES).currency_code == domain.DEFAULT_CURRENCY
    with pytest.raises(DomainError) as exc:
        domain.create("c", None, "usd", [], PRICES)
    assert errors_of(exc) == [("INVALID_INPUT", ["currencyCode"])]
    # Well formed but no currency: a cart nothing could be priced in.
    with pytest.raises(DomainError) as exc:
        domain.create("c", None, "XYZ", [], PRICES)
    assert errors_of(exc) == [("INVALID_INPUT", ["currencyCode"])]
    assert "XYZ is not an ISO 4217 currency" in str(exc.value)
    assert domain.create("c", None, "JPY", [], PRICES).currency_code == "JPY"


def test_create_validates_lines_like_an_add() -> None:
    with pytest.raises(DomainError) as exc:
        domain.create("c", None, "USD", [LineRequest("EUR", 1), LineRequest("NOPE", 1)], PRICES)
    assert errors_of(exc) == [("INVALID_INPUT", ["lines", "0", "sku"]), ("NOT_FOUND", ["lines", "1", "sku"])]


def test_adding_a_sku_already_in_the_cart_adds_to_its_line_at_the_current_price() -> None:
    cart = new_cart(LineRequest("TEE", 2))
    repriced = {**PRICES, "TEE": CatalogPrice("TEE", Decimal("17.00"), "USD", True)}
    event = domain.add_lines(
        cart, [LineRequest("TEE", 3), LineRequest("MUG", 1), LineRequest("TEE", 1)], repriced
    )
    cart = then(cart, event)
    assert cart.version == 2
    assert [(x.line_id, x.sku, x.quantity, x.unit_price) for x in cart.lines] == [
        ("1", "TEE", 6, Decimal("17.00")),
        ("2", "MUG", 1, Decimal("8.50")),
    ]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (LineRequest("TEE", 0), ("INVALID_INPUT", ["lines", "0", "quantity"])),
        (LineRequest("TEE", -3), ("INVALID_INPUT", ["lines", "0", "quantity"])),
        (LineRequest("TEE", 1000), ("INVALID_INPUT", ["lines", "0", "quantity"])),
        (LineRequest("TEE", 998), ("INVALID_INPUT", ["lines", "0", "quantity"])),  # 2 + 998 > 999
        (LineRequest("NOPE", 1), ("NOT_FOUND", ["lines", "0", "sku"])),
        (LineRequest("OLD", 1), ("NOT_FOUND", ["lines", "0", "sku"])),
        (LineRequest("EUR", 1), ("INVALID_INPUT", ["lines", "0", "sku"])),
        (LineRequest("X" * 10_000, 1), ("INVALID_INPUT", ["lines", "0", "sku"])),
    ],
)
def test_add_rejects(request_: LineRequest, expected: tuple[str, list[str]]) -> None:
    cart = new_cart(LineRequest("TEE", 2))
    with pytest.raises(DomainError) as exc:
        domain.add_lines(cart, [request_], PRICES)
    assert errors_of(exc) == [expected]


def test_add_reports_every_bad_line_and_the_line_limit() -> None:
    prices = {f"S{i}": CatalogPrice(f"S{i}", Decimal(1), "USD", True) for i in range(101)}
    cart = domain.fold(
        [domain.create("c", None, None, [LineRequest(f"S{i}", 1) for i in range(100)], prices)]
    )
    assert len(cart.lines) == domain.MAX_LINES
    with pytest.raises(DomainError) as exc:
        domain.add_lines(cart, [LineRequest("S0", 0), LineRequest("S100", 1), LineRequest("S1", 1)], prices)
    assert errors_of(exc) == [
        ("INVALID_INPUT", ["lines", "0", "quantity"]),
        ("INVALID_INPUT", ["lines", "1"]),
    ]
    with pytest.raises(DomainError) as exc:
        domain.add_lines(cart, [], prices)
    assert errors_of(exc) == [("INVALID_INPUT", ["lines"])]


def test_change_quantities_sets_reprices_and_zero_removes() -> None:
    cart = new_cart(LineRequest("TEE", 2), LineRequest("MUG", 1))
    repriced = {**PRICES, "TEE": CatalogPrice("TEE", Decimal("18.00"), "USD", True)}
    event = domain.change_quantities(cart, [QuantityChange("1", 5), QuantityChange("2", 0)], repriced)
    assert isinstance(event, CartLineQuantitiesChanged) and event.removed_line_ids == ("2",)
    cart = then(cart, event)
    assert [(x.line_id, x.quantity, x.unit_price) for x in cart.lines] == [("1", 5, Decimal("18.00"))]


def test_change_quantities_leaves_out_lines_set_to_what_they_are() -> None:
    cart = new_cart(LineRequest("TEE", 2), LineRequest("MUG", 1))
    assert domain.change_quantities(cart, [QuantityChange("1", 2), QuantityChange("2", 1)], PRICES) is None
    # Only the line that changes is recorded.
    event = domain.change_quantities(cart, [QuantityChange("1", 2), QuantityChange("2", 4)], PRICES)
    assert event is not None and [x.line_id for x in event.lines] == ["2"]
    # The same quantity at a new catalog price reprices the line: a change.
    repriced = {**PRICES, "TEE": CatalogPrice("TEE", Decimal("18.00"), "USD", True)}
    event = domain.change_quantities(cart, [QuantityChange("1", 2)], repriced)
    assert event is not None and [(x.line_id, x.unit_price) for x in event.lines] == [("1", Decimal("18.00"))]
    # Bad input is still refused, even beside lines that stay as they are.
    with pytest.raises(DomainError):
        domain.change_quantities(cart, [QuantityChange("1", 2), QuantityChange("9", 1)], PRICES)


def test_change_quantities_rejects() -> None:
    cart = new_cart(LineRequest("TEE", 2), LineRequest("MUG", 1))
    withdrawn = {**PRICES, "MUG": CatalogPrice("MUG", Decimal("8.50"), "USD", False)}
    changes = [
        QuantityChange("9", 1),
        QuantityChange("1", -1),
        QuantityChange("1", 1000),
        QuantityChange("2", 3),
        QuantityChange("", 1),
    ]
    with pytest.raises(DomainError) as exc:
        domain.change_quantities(cart, changes, withdrawn)
    assert errors_of(exc) == [
        ("NOT_FOUND", ["lines", "0", "lineId"]),
        ("INVALID_INPUT", ["lines", "1", "quantity"]),
        ("INVALID_INPUT", ["lines", "2", "lineId"]),  # listed twice
        ("NOT_FOUND", ["lines", "3", "lineId"]),  # SKU withdrawn: cannot be repriced
        ("NOT_FOUND", ["lines", "4", "lineId"]),
    ]
    # Removing a withdrawn SKU's line is always allowed.
    removal = domain.change_quantities(cart, [QuantityChange("2", 0)], withdrawn)
    assert removal is not None and removal.removed_line_ids == ("2",)


def test_remove_lines() -> None:
    cart = new_cart(LineRequest("TEE", 2), LineRequest("MUG", 1))
    cart = then(cart, domain.remove_lines(cart, ["1", "1"]))
    assert [x.sku for x in cart.lines] == ["MUG"]
    with pytest.raises(DomainError) as exc:
        domain.remove_lines(cart, ["2", "1"])
    assert errors_of(exc) == [("NOT_FOUND", ["lineIds", "1"])]
    # Line ids are never reused after a removal.
    cart = then(cart, domain.add_lines(cart, [LineRequest("TEE", 1)], PRICES))
    assert [x.line_id for x in cart.lines] == ["2", "3"]


def test_a_cart_that_is_not_active_takes_no_edits() -> None:
    cart = new_cart(LineRequest("TEE", 1))
    cart = then(cart, domain.check_out(cart, "order-1"))
    assert cart.status == "CHECKED_OUT"
    for decide in (
        lambda: domain.add_lines(cart, [LineRequest("TEE", 1)], PRICES),
        lambda: domain.change_quantities(cart, [QuantityChange("1", 2)], PRICES),
        lambda: domain.remove_lines(cart, ["1"]),
        lambda: domain.check_out(cart, "order-2"),
    ):
        with pytest.raises(DomainError) as exc:
            decide()
        assert errors_of(exc) == [("CART_NOT_ACTIVE", ["cartId"])]
    with pytest.raises(DomainError, match="empty") as exc:
        domain.check_out(new_cart(), "order-3")
    assert exc.value.code == "CART_EMPTY"


def test_access_guest_cart_is_a_bearer_capability_customer_cart_is_private() -> None:
    guest = new_cart()
    owned = new_cart(customer_id="cust-1")
    for actor in (CartActor(), CartActor("cust-2"), CartActor(staff=True)):
        domain.ensure_access(guest, actor)
    domain.ensure_access(owned, CartActor("cust-1"))
    domain.ensure_access(owned, CartActor(staff=True))
    for actor in (CartActor(), CartActor("cust-2")):
        with pytest.raises(DomainError) as exc:
            domain.ensure_access(owned, actor)
        assert errors_of(exc) == [("NOT_FOUND", ["cartId"])]
    with pytest.raises(DomainError) as exc:
        domain.ensure_access(domain.Cart(), CartActor(staff=True))
    assert exc.value.code == "NOT_FOUND"


def test_expected_version() -> None:
    cart = new_cart()
    domain.check_version(cart, None)
    domain.check_version(cart, 1)
    with pytest.raises(DomainError) as exc:
        domain.check_version(cart, 0)
    assert exc.value.code == "VERSION_CONFLICT"


def test_events_round_trip_through_the_ledger_codec() -> None:
    created = domain.create("c1", "cust-1", None, [LineRequest("TEE", 2)], PRICES)
    added = domain.add_lines(domain.fold([created]), [LineRequest("MUG", 1)], PRICES)
    for event in (created, added):
        assert decode_event(event.event_type(), event.to_data()) == event
    assert isinstance(added, CartLinesAdded) and isinstance(created, CartCreated)
    assert created.to_data()["lines"][0]["unit_price"] == "19.99"


def test_an_overlong_sku_is_refused_without_being_repeated_back() -> None:
    with pytest.raises(DomainError) as exc:
        domain.add_lines(new_cart(LineRequest("TEE", 1)), [LineRequest("X" * 10_000, 1)], PRICES)
    assert "X" * 100 not in str(exc.value) and all(len(e.message) < 200 for e in exc.value.errors)


def test_a_line_over_the_limit_by_repeats_of_its_sku_says_what_it_would_hold() -> None:
    with pytest.raises(ValidationErrors) as exc:
        new_cart(*[LineRequest("TEE", 1)] * 1000)
    assert [(e.field, e.message) for e in exc.value.errors] == [
        (
            ["lines", "999", "quantity"],
            "a line holds at most 999; 'TEE' would hold 1000 (lines of one SKU add up)",
        )
    ]
