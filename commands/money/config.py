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
    driver = await asyncpg_of(conn)
    methods = await load_methods(driver)
    # The currency's policy and the country's rates in one round trip: one row per rate, each
    # carrying the policy (or one row of NULL rate columns when the country has none).
    rows = await driver.fetch(_POLICY_AND_RATES, currency, country_code)
    first = rows[0]
    policy = (
        TaxPolicy()
        if first["prices_include_tax"] is None
        else TaxPolicy(first["prices_include_tax"], first["rounding"])
    )
    rates = tuple(
        TaxRate(row["country_code"], row["category"], row["rate"].normalize(), row["region"] or None)
        for row in rows
        if row["country_code"] is not None
    )
    return MoneyConfig(methods, rates, policy)


_METHODS = (
    "SELECT code, name, currency, price, free_above, country_prices, countries, active "
    "FROM shipping_methods ORDER BY code"
)
_POLICY_AND_RATES = (
    "SELECT p.prices_include_tax, p.rounding, r.country_code, r.category, r.rate, r.region "
    "FROM (SELECT 1) AS one "
    "LEFT JOIN tax_policies AS p ON p.currency = $1 "
    "LEFT JOIN tax_rates AS r ON r.country_code = $2::text"
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
