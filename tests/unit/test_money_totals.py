"""Order money against hand-computed tables: taxes inclusive and exclusive in three countries and
two categories, banker's rounding per line and per total, shipping thresholds, discounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from commands.domain.money import (
    FIXED,
    ON_SHIPPING,
    PER_LINE,
    PER_TOTAL,
    PERCENTAGE,
    REDUCED,
    STANDARD,
    Destination,
    DiscountCode,
    DiscountCodeExpired,
    DiscountCodeInvalid,
    DiscountMinimumNotMet,
    PricedLine,
    ShippingMethod,
    ShippingMethodIneligible,
    ShippingMethodRequired,
    TaxLine,
    TaxPolicy,
    TaxRate,
    check_discount,
    choose_named_shipping,
    choose_shipping,
    compute_totals,
    eligible_methods,
    round_money,
)
from commands.errors import NotFound

D = Decimal
RATES = (
    TaxRate("DE", STANDARD, D("0.19")),
    TaxRate("DE", REDUCED, D("0.07")),
    TaxRate("FR", STANDARD, D("0.20")),
    TaxRate("FR", REDUCED, D("0.055")),
    TaxRate("GB", STANDARD, D("0.20")),
    TaxRate("GB", REDUCED, D("0.05")),
)
# 3 x 10.00 standard + 1 x 4.99 reduced = 34.99, shipping 4.90 (taxed at the standard rate).
LINES = (PricedLine("TEE", 3, D("10.00"), STANDARD), PricedLine("BOOK", 1, D("4.99"), REDUCED))
SHIPPING = D("4.90")


def _tax(*lines: tuple[str, str, str]) -> tuple[TaxLine, ...]:
    return tuple(TaxLine(D(rate), D(base), D(amount)) for rate, base, amount in lines)


# Exclusive: tax = base x rate, rounded per line (half to even), on top of the prices.
#   DE 19 %: 30.00 -> 5.70, shipping 4.90 -> 0.931 -> 0.93: base 34.90, tax 6.63;  7 %: 4.99 -> 0.3493 -> 0.35
#   FR 20 %: 6.00 + 0.98 = 6.98;  5.5 %: 4.99 -> 0.27445 -> 0.27
#   GB 20 %: 6.98;                5 %: 4.99 -> 0.2495 -> 0.25
EXCLUSIVE = {
    "DE": (_tax(("0.19", "34.90", "6.63"), ("0.07", "4.99", "0.35")), "6.98", "46.87"),
    "FR": (_tax(("0.20", "34.90", "6.98"), ("0.055", "4.99", "0.27")), "7.25", "47.14"),
    "GB": (_tax(("0.20", "34.90", "6.98"), ("0.05", "4.99", "0.25")), "7.23", "47.12"),
}
# Inclusive: tax = gross x rate / (1 + rate), rounded per line; base = gross - tax; total = 39.89.
#   DE 19 %: 30.00 -> 4.7899 -> 4.79, 4.90 -> 0.7824 -> 0.78: tax 5.57, base 29.33
#         7 %: 4.99 -> 0.3264 -> 0.33
#   FR 20 %: 30.00 -> 5.00, 4.90 -> 0.8167 -> 0.82: 5.82, base 29.08;  5.5 %: 4.99 -> 0.2601 -> 0.26
#   GB 20 %: 5.82, base 29.08;  5 %: 4.99 -> 0.2376 -> 0.24
INCLUSIVE = {
    "DE": (_tax(("0.19", "29.33", "5.57"), ("0.07", "4.66", "0.33")), "5.90", "39.89"),
    "FR": (_tax(("0.20", "29.08", "5.82"), ("0.055", "4.73", "0.26")), "6.08", "39.89"),
    "GB": (_tax(("0.20", "29.08", "5.82"), ("0.05", "4.75", "0.24")), "6.06", "39.89"),
}


@pytest.mark.parametrize("country", sorted(EXCLUSIVE))
def test_tax_exclusive_prices_add_tax_per_country_and_category(country: str) -> None:
    tax_lines, tax, total = EXCLUSIVE[country]
    totals = compute_totals(LINES, "EUR", rates=RATES, destination=Destination(country), shipping=SHIPPING)
    assert (totals.subtotal, totals.shipping, totals.discounts) == (D("34.99"), D("4.90"), D("0.00"))
    assert totals.tax_lines == tax_lines
    assert (totals.tax, totals.total) == (D(tax), D(total))


@pytest.mark.parametrize("country", sorted(INCLUSIVE))
def test_tax_inclusive_prices_carry_their_tax(country: str) -> None:
    tax_lines, tax, total = INCLUSIVE[country]
    totals = compute_totals(
        LINES,
        "EUR",
        policy=TaxPolicy(prices_include_tax=True),
        rates=RATES,
        destination=Destination(country),
        shipping=SHIPPING,
    )
    assert totals.tax_lines == tax_lines
    assert (totals.tax, totals.total, totals.prices_include_tax) == (D(tax), D(total), True)


def test_bankers_rounding_per_line_differs_from_per_total() -> None:
    # Two lines of 0.25 at 10 %: per line 0.025 -> 0.02 each (half to even) = 0.04; per total 0.50 -> 0.05.
    lines = (PricedLine("A", 1, D("0.25")), PricedLine("B", 1, D("0.25")))
    rates = (TaxRate("DE", STANDARD, D("0.10")),)
    per_line = compute_totals(lines, "EUR", rates=rates, destination=Destination("DE"))
    per_total = compute_totals(
        lines, "EUR", policy=TaxPolicy(rounding=PER_TOTAL), rates=rates, destination=Destination("DE")
    )
    assert per_line.tax_lines == _tax(("0.10", "0.50", "0.04"))
    assert per_total.tax_lines == _tax(("0.10", "0.50", "0.05"))
    assert (per_line.total, per_total.total) == (D("0.54"), D("0.55"))
    # 0.35 x 10 % = 0.035 rounds up to the even 0.04.
    assert compute_totals(
        (PricedLine("C", 1, D("0.35")),), "EUR", rates=rates, destination=Destination("DE")
    ).tax == D("0.04")
    assert round_money(D("0.125"), "EUR") == D("0.12") and round_money(D("0.135"), "EUR") == D("0.14")
    assert TaxPolicy().rounding == PER_LINE


def test_no_rates_or_no_destination_means_no_tax_as_before() -> None:
    plain = compute_totals(LINES, "EUR")
    assert (plain.tax_lines, plain.tax, plain.total) == ((), D("0.00"), D("34.99"))
    unknown = compute_totals(LINES, "EUR", rates=RATES, destination=Destination("US"), shipping=SHIPPING)
    assert (unknown.tax, unknown.total) == (D("0.00"), D("39.89"))


def test_region_rate_wins_over_the_country_rate() -> None:
    rates = (TaxRate("US", STANDARD, D("0.05")), TaxRate("US", STANDARD, D("0.0725"), region="CA"))
    line = (PricedLine("A", 1, D("100.00")),)
    assert compute_totals(line, "USD", rates=rates, destination=Destination("US", "CA")).tax == D("7.25")
    assert compute_totals(line, "USD", rates=rates, destination=Destination("US", "NY")).tax == D("5.00")


def test_a_subtotal_discount_is_spread_over_the_lines_before_tax() -> None:
    # 10 % of 34.99 = 3.499 -> 3.50: TEE takes 3.50 x 30/34.99 = 3.0009 -> 3.00, BOOK the remaining 0.50.
    # DE: (27.00 -> 5.13) + (4.90 -> 0.93) = 6.06 on 31.90; 4.49 x 7 % = 0.3143 -> 0.31.
    ten = DiscountCode("TEN", PERCENTAGE, D("10"))
    totals = compute_totals(
        LINES, "EUR", rates=RATES, destination=Destination("DE"), shipping=SHIPPING, discount=ten
    )
    assert totals.discounts == D("3.50")
    assert totals.tax_lines == _tax(("0.19", "31.90", "6.06"), ("0.07", "4.49", "0.31"))
    assert totals.total == D("42.76")  # 34.99 + 4.90 - 3.50 + 6.37
    assert totals.discount_code == "TEN"


def test_shipping_discounts_and_fixed_amounts_are_capped_at_their_base() -> None:
    free_shipping = DiscountCode("SHIPFREE", PERCENTAGE, D("100"), target=ON_SHIPPING)
    totals = compute_totals(LINES, "EUR", shipping=SHIPPING, discount=free_shipping)
    assert (totals.discounts, totals.total) == (D("4.90"), D("34.99"))
    big = DiscountCode("BIG", FIXED, D("50"), currency="EUR")
    assert compute_totals(LINES, "EUR", shipping=SHIPPING, discount=big).total == D("4.90")


METHOD = ShippingMethod(
    "standard",
    "Standard",
    "EUR",
    D("4.90"),
    free_above=D("50.00"),
    country_prices=(("FR", D("6.90")),),
    countries=("DE", "FR", "GB"),
)


def test_free_shipping_threshold_is_inclusive_and_one_cent_under_pays() -> None:
    assert METHOD.price_for("EUR", Destination("DE"), D("50.00")) == D("0.00")
    assert METHOD.price_for("EUR", Destination("DE"), D("49.99")) == D("4.90")
    assert METHOD.price_for("EUR", Destination("FR"), D("49.99")) == D("6.90")
    assert METHOD.price_for("EUR", Destination("US"), D("10")) is None
    assert METHOD.price_for("USD", Destination("DE"), D("10")) is None


def test_choosing_shipping_needs_an_eligible_method_only_when_the_store_has_methods() -> None:
    express = ShippingMethod("express", "Express", "EUR", D("12"))
    methods = (METHOD, express)
    field = ["shippingMethod"]
    assert choose_shipping((), None, "EUR", Destination("US"), D("1"), field) is None
    assert [m.code for m, _ in eligible_methods(methods, "EUR", Destination("US"), D("1"))] == ["express"]
    with pytest.raises(ShippingMethodRequired) as missing:
        choose_shipping(methods, None, "EUR", Destination("DE"), D("1"), field)
    assert missing.value.field == field
    with pytest.raises(ShippingMethodIneligible):
        choose_shipping(methods, "standard", "EUR", Destination("US"), D("1"), field)
    chosen = choose_shipping(methods, "standard", "EUR", Destination("FR"), D("1"), field)
    assert chosen == (METHOD, D("6.90"))
    # A name the store does not have is not found, not ineligible (nothing to choose instead).
    with pytest.raises(NotFound, match="no shipping method warp") as unknown:
        choose_shipping(methods, "warp", "EUR", Destination("FR"), D("1"), field)
    assert unknown.value.field == field and unknown.value.code == "NOT_FOUND"
    with pytest.raises(NotFound, match="ships without methods"):
        choose_named_shipping((), "warp", "EUR", Destination("FR"), D("1"), field)


def test_discount_checks_name_the_field() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    field = ["input", "discountCode"]
    expired = DiscountCode("OLD", PERCENTAGE, D("10"), ends_at=now)
    with pytest.raises(DiscountCodeExpired) as refused:
        check_discount(expired, "EUR", D("100"), now, field)
    assert refused.value.code == "DISCOUNT_CODE_EXPIRED" and refused.value.field == field
    early = DiscountCode("SOON", PERCENTAGE, D("10"), starts_at=now + timedelta(days=1))
    with pytest.raises(DiscountCodeExpired):
        check_discount(early, "EUR", D("100"), now, field)
    minimum = DiscountCode("MIN", PERCENTAGE, D("10"), minimum_subtotal=D("50"))
    with pytest.raises(DiscountMinimumNotMet) as below:
        check_discount(minimum, "EUR", D("49.99"), now, field)
    assert below.value.code == "DISCOUNT_CODE_MINIMUM_NOT_MET" and below.value.field == field
    check_discount(minimum, "EUR", D("50.00"), now, field)
    with pytest.raises(DiscountCodeInvalid):
        check_discount(DiscountCode("USD5", FIXED, D("5"), currency="USD"), "EUR", D("100"), now, field)
