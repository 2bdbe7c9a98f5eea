"""Money configuration and discount-code use events.

Configuration events carry the full state after the change (like catalog events),
so the newest event of a stream is the configuration:
``shipping-method-<code>``, ``tax-rate-<country>-<region>-<category>``,
``tax-policy-<currency>`` and ``discount-code-<code>``. A discount code's stream
also records every use: reserved at checkout, committed on authorization,
released when the checkout is declined or cancelled before capture; ``uses`` is
the code's count after the change.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

import msgspec

from commands.events.base import Event


class CountryPrice(msgspec.Struct, frozen=True):
    country_code: str
    price: Decimal


class ShippingMethodDefined(Event, frozen=True):
    stream_type: ClassVar[str] = "shipping_method"
    code: str
    name: str
    currency: str
    price: Decimal
    free_above: Decimal | None
    country_prices: tuple[CountryPrice, ...]
    countries: tuple[str, ...]
    active: bool


class TaxRateSet(Event, frozen=True):
    """``rate`` None: the rate was removed (no tax for that category there)."""

    stream_type: ClassVar[str] = "tax_rate"
    country_code: str
    region: str | None
    category: str
    rate: Decimal | None


class TaxPolicySet(Event, frozen=True):
    stream_type: ClassVar[str] = "tax_policy"
    currency: str
    prices_include_tax: bool
    rounding: str


class DiscountCodeDefined(Event, frozen=True):
    stream_type: ClassVar[str] = "discount_code"
    code: str
    kind: str
    value: Decimal
    target: str
    currency: str | None
    minimum_subtotal: Decimal | None
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    per_customer_limit: int | None
    active: bool


class DiscountCodeUseReserved(Event, frozen=True):
    stream_type: ClassVar[str] = "discount_code"
    code: str
    order_id: str
    customer_id: str | None
    uses: int


class DiscountCodeUseCommitted(Event, frozen=True):
    stream_type: ClassVar[str] = "discount_code"
    code: str
    order_id: str


class DiscountCodeUseReleased(Event, frozen=True):
    stream_type: ClassVar[str] = "discount_code"
    code: str
    order_id: str
    reason: str
    uses: int


def shipping_method_stream(code: str) -> str:
    return f"shipping-method-{code}"


def tax_rate_stream(country_code: str, region: str | None, category: str) -> str:
    return f"tax-rate-{country_code}-{region or ''}-{category}"


def tax_policy_stream(currency: str) -> str:
    return f"tax-policy-{currency}"


def discount_code_stream(code: str) -> str:
    return f"discount-code-{code}"
