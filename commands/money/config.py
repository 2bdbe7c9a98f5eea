"""Reading the money configuration from the tables the commands own, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from commands.domain.money import DiscountCode, ShippingMethod, TaxPolicy, TaxRate
from commands.store.tables import discount_codes, shipping_methods, tax_policies, tax_rates


@dataclass(frozen=True)
class MoneyConfig:
    """What prices a cart in one currency for one destination country."""

    methods: tuple[ShippingMethod, ...] = ()
    rates: tuple[TaxRate, ...] = ()
    policy: TaxPolicy = field(default_factory=TaxPolicy)


async def load(conn: AsyncConnection, currency: str, country_code: str | None) -> MoneyConfig:
    m = shipping_methods.c
    methods = tuple(_method(row) for row in await conn.execute(select(shipping_methods).order_by(m.code)))
    rates: tuple[TaxRate, ...] = ()
    if country_code is not None:
        t = tax_rates.c
        rows = await conn.execute(select(tax_rates).where(t.country_code == country_code))
        rates = tuple(
            TaxRate(row.country_code, row.category, row.rate.normalize(), row.region or None) for row in rows
        )
    p = tax_policies.c
    policy_row = (await conn.execute(select(tax_policies).where(p.currency == currency))).first()
    policy = (
        TaxPolicy() if policy_row is None else TaxPolicy(policy_row.prices_include_tax, policy_row.rounding)
    )
    return MoneyConfig(methods, rates, policy)


def _method(row: Any) -> ShippingMethod:
    return ShippingMethod(
        code=row.code,
        name=row.name,
        currency=row.currency.strip(),
        price=row.price,
        free_above=row.free_above,
        country_prices=tuple(sorted((c, Decimal(p)) for c, p in row.country_prices.items())),
        countries=tuple(row.countries),
        active=row.active,
    )


async def load_discount(conn: AsyncConnection, code: str) -> DiscountCode | None:
    row = (await conn.execute(select(discount_codes).where(discount_codes.c.code == code))).first()
    if row is None:
        return None
    return DiscountCode(
        code=row.code,
        kind=row.kind,
        value=row.value,
        target=row.target,
        currency=None if row.currency is None else row.currency.strip(),
        minimum_subtotal=row.minimum_subtotal,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        usage_limit=row.usage_limit,
        per_customer_limit=row.per_customer_limit,
        active=row.active,
    )
