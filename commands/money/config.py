"""Reading the money configuration from the tables the commands own, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.domain.money import DiscountCode, ShippingMethod, TaxPolicy, TaxRate
from commands.store.driver import asyncpg_of


@dataclass(frozen=True)
class MoneyConfig:
    """What prices a cart in one currency for one destination country."""

    methods: tuple[ShippingMethod, ...] = ()
    rates: tuple[TaxRate, ...] = ()
    policy: TaxPolicy = field(default_factory=TaxPolicy)


async def load_methods(conn: AsyncConnection) -> tuple[ShippingMethod, ...]:
    """The shipping methods alone (a cart choosing one needs no tax configuration)."""
    return tuple(_method(row) for row in await (await asyncpg_of(conn)).fetch(_METHODS))


async def load(conn: AsyncConnection, currency: str, country_code: str | None) -> MoneyConfig:
    # One round trip: the methods, the currency's policy and the country's rates, each table's
    # rows as composite values (a checkout reads this on every purchase).
    row = await (await asyncpg_of(conn)).fetchrow(_CONFIG, currency, country_code)
    policy = row["policy"]
    return MoneyConfig(
        tuple(_method(method) for method in row["methods"]),
        tuple(
            TaxRate(rate["country_code"], rate["category"], rate["rate"].normalize(), rate["region"] or None)
            for rate in row["rates"]
        ),
        TaxPolicy() if policy is None else TaxPolicy(policy["prices_include_tax"], policy["rounding"]),
    )


_METHODS = (
    "SELECT code, name, currency, price, free_above, country_prices, countries, active "
    "FROM shipping_methods ORDER BY code"
)
_CONFIG = (
    "SELECT ARRAY(SELECT m FROM shipping_methods AS m ORDER BY m.code) AS methods, "
    "(SELECT p FROM tax_policies AS p WHERE p.currency = $1) AS policy, "
    "ARRAY(SELECT r FROM tax_rates AS r WHERE r.country_code = $2::text "
    "ORDER BY r.region, r.category) AS rates"
)
_DISCOUNT = (
    "SELECT code, kind, value, target, currency, minimum_subtotal, starts_at, ends_at, usage_limit, "
    "per_customer_limit, active FROM discount_codes WHERE code = $1"
)


def _method(row: Any) -> ShippingMethod:
    return ShippingMethod(
        code=row["code"],
        name=row["name"],
        currency=row["currency"].strip(),
        price=row["price"],
        free_above=row["free_above"],
        country_prices=tuple(sorted((c, Decimal(p)) for c, p in row["country_prices"].items())),
        countries=tuple(row["countries"]),
        active=row["active"],
    )


async def load_discount(conn: AsyncConnection, code: str) -> DiscountCode | None:
    row = await (await asyncpg_of(conn)).fetchrow(_DISCOUNT, code)
    if row is None:
        return None
    return DiscountCode(
        code=row["code"],
        kind=row["kind"],
        value=row["value"],
        target=row["target"],
        currency=None if row["currency"] is None else row["currency"].strip(),
        minimum_subtotal=row["minimum_subtotal"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        usage_limit=row["usage_limit"],
        per_customer_limit=row["per_customer_limit"],
        active=row["active"],
    )
