"""Reading the money configuration from the tables the commands own, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
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
    # One round trip: the methods, the currency's policy and the country's rates (a checkout reads
    # them with its cart's variants instead: ``config_columns``).
    return config_of(await (await asyncpg_of(conn)).fetchrow(_CONFIG, currency, country_code))


def config_columns(currency: str, country_code: str) -> str:
    """The select-list ``config_of`` reads, for a statement of the caller's: ``currency`` and
    ``country_code`` name its parameters (``"$3"``).

    Anonymous ROW values, read by position: the driver decodes them from the answer alone, where
    a table's row type would be described once per connection and go stale when a migration
    changes the table under a kept connection.
    """
    return (
        f"ARRAY(SELECT ROW({_METHOD_COLUMNS}) FROM shipping_methods ORDER BY code) AS methods, "
        "(SELECT ROW(prices_include_tax, rounding) FROM tax_policies "
        f"WHERE currency = {currency}) AS policy, "
        "ARRAY(SELECT ROW(country_code, category, rate, region) FROM tax_rates "
        f"WHERE country_code = {country_code}::text ORDER BY region, category) AS rates"
    )


def config_of(row: Any) -> MoneyConfig:
    """The configuration from a row with ``config_columns``."""
    policy = row["policy"]
    return MoneyConfig(
        tuple(_method(method) for method in row["methods"]),
        tuple(
            TaxRate(country, category, rate.normalize(), region or None)
            for country, category, rate, region in row["rates"]
        ),
        TaxPolicy() if policy is None else TaxPolicy(policy[0], policy[1]),
    )


# Both in the column order ``_method`` reads.
_METHOD_COLUMNS = "code, name, currency, price, free_above, country_prices, countries, active"
_METHODS = f"SELECT {_METHOD_COLUMNS} FROM shipping_methods ORDER BY code"
_CONFIG = f"SELECT {config_columns('$1', '$2')}"
_DISCOUNT = (
    "SELECT code, kind, value, target, currency, minimum_subtotal, starts_at, ends_at, usage_limit, "
    "per_customer_limit, active FROM discount_codes WHERE code = $1"
)


def _method(row: Sequence[Any]) -> ShippingMethod:
    """A method from its ``_METHOD_COLUMNS``, by position."""
    code, name, currency, price, free_above, country_prices, countries, active = row
    return ShippingMethod(
        code=code,
        name=name,
        currency=currency.strip(),
        price=price,
        free_above=free_above,
        country_prices=tuple(sorted((c, Decimal(p)) for c, p in country_prices.items())),
        countries=tuple(countries),
        active=active,
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
