"""Validation of money configuration commands (pure): every problem at once, each naming its field."""

from __future__ import annotations

import re
from decimal import Decimal

from commands.domain.countries import is_country
from commands.domain.currencies import minor_units
from commands.domain.money import (
    FIXED,
    ON_SHIPPING,
    ON_SUBTOTAL,
    PER_LINE,
    PER_TOTAL,
    PERCENTAGE,
    TAX_CATEGORIES,
    quantum,
)
from commands.errors import DomainError, InvalidInput, ValidationErrors
from commands.messages.money import DefineDiscountCode, DefineShippingMethod, SetTaxPolicy, SetTaxRate

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REGION = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_NAME = 200
MAX_AMOUNT = Decimal("99999999999999")


class _Errors:
    def __init__(self) -> None:
        self.found: list[DomainError] = []

    def check(self, ok: bool, message: str, *field: str) -> None:
        if not ok:
            self.found.append(InvalidInput(message, list(field)))

    def amount(self, value: Decimal | None, currency: str, *field: str) -> None:
        if value is None:
            return
        if not (value.is_finite() and Decimal(0) <= value <= MAX_AMOUNT):
            self.check(False, "must be a non-negative amount", *field)
        elif minor_units(currency) is not None and value != value.quantize(quantum(currency)):
            self.check(False, f"has more decimals than {currency} allows", *field)

    def raise_any(self) -> None:
        if self.found:
            raise ValidationErrors(self.found)


def _currency(errors: _Errors, currency: str, *field: str) -> None:
    errors.check(minor_units(currency) is not None, "must be an ISO 4217 currency code", *field)


def shipping_method(command: DefineShippingMethod) -> None:
    errors = _Errors()
    errors.check(bool(CODE.match(command.code)), "code: letters, digits, '.', '_', '-', 1 to 64", "code")
    errors.check(
        0 < len(command.name.strip()) <= MAX_NAME, f"name must be 1 to {MAX_NAME} characters", "name"
    )
    _currency(errors, command.currency, "currency")
    errors.amount(command.price, command.currency, "price")
    errors.amount(command.free_above, command.currency, "freeAbove")
    for i, (country, price) in enumerate(command.country_prices):
        errors.check(is_country(country), "must be an ISO 3166-1 code", "countryPrices", str(i))
        errors.amount(price, command.currency, "countryPrices", str(i), "price")
    for i, country in enumerate(command.countries):
        errors.check(is_country(country), "must be an ISO 3166-1 code", "countries", str(i))
    errors.raise_any()


def tax_rate(command: SetTaxRate) -> None:
    errors = _Errors()
    errors.check(is_country(command.country_code), "must be an ISO 3166-1 code", "countryCode")
    errors.check(command.region is None or bool(REGION.match(command.region)), "invalid region", "region")
    errors.check(command.category in TAX_CATEGORIES, f"one of {', '.join(TAX_CATEGORIES)}", "category")
    rate = command.rate
    errors.check(
        rate is None or (rate.is_finite() and Decimal(0) <= rate < 1), "a fraction from 0 to below 1", "rate"
    )
    errors.raise_any()


def tax_policy(command: SetTaxPolicy) -> None:
    errors = _Errors()
    _currency(errors, command.currency, "currency")
    errors.check(command.rounding in (PER_LINE, PER_TOTAL), "PER_LINE or PER_TOTAL", "rounding")
    errors.raise_any()


def discount_code(command: DefineDiscountCode) -> None:
    errors = _Errors()
    errors.check(bool(CODE.match(command.code)), "code: letters, digits, '.', '_', '-', 1 to 64", "code")
    errors.check(command.kind in (PERCENTAGE, FIXED), "PERCENTAGE or FIXED", "kind")
    errors.check(command.target in (ON_SUBTOTAL, ON_SHIPPING), "SUBTOTAL or SHIPPING", "target")
    value = command.value
    errors.check(value.is_finite() and value > 0, "must be positive", "value")
    if command.kind == PERCENTAGE:
        errors.check(value <= 100, "a percentage is at most 100", "value")
        errors.check(command.currency is None, "a percentage has no currency", "currency")
    elif command.kind == FIXED:
        errors.check(command.currency is not None, "a fixed amount needs its currency", "currency")
    if command.currency is not None:
        _currency(errors, command.currency, "currency")
    if command.starts_at is not None and command.ends_at is not None:
        errors.check(command.starts_at < command.ends_at, "must be after startsAt", "endsAt")
    for name, limit in (
        ("usageLimit", command.usage_limit),
        ("perCustomerLimit", command.per_customer_limit),
    ):
        errors.check(limit is None or limit > 0, "must be positive", name)
    errors.check(
        command.minimum_subtotal is None or command.minimum_subtotal >= 0,
        "must not be negative",
        "minimumSubtotal",
    )
    errors.raise_any()
