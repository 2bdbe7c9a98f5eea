"""Money configuration commands (admin): shipping methods, tax rates and policies, discount codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from commands.bus import Command


@dataclass(frozen=True)
class MoneyConfigResult:
    # Ledger position of the event appended; None when nothing changed.
    position: int | None


@dataclass(frozen=True)
class DefineShippingMethod(Command[MoneyConfigResult]):
    """Create or replace the method with this code."""

    code: str
    name: str
    currency: str
    price: Decimal
    free_above: Decimal | None = None
    country_prices: tuple[tuple[str, Decimal], ...] = ()
    countries: tuple[str, ...] = ()
    active: bool = True


@dataclass(frozen=True)
class SetTaxRate(Command[MoneyConfigResult]):
    """``rate`` as a fraction (0.19); None removes the rate."""

    country_code: str
    category: str
    rate: Decimal | None
    region: str | None = None


@dataclass(frozen=True)
class SetTaxPolicy(Command[MoneyConfigResult]):
    currency: str
    prices_include_tax: bool
    rounding: str = "PER_LINE"


@dataclass(frozen=True)
class DefineDiscountCode(Command[MoneyConfigResult]):
    """Create or replace the code (its use count is kept)."""

    code: str
    kind: str
    value: Decimal
    target: str = "SUBTOTAL"
    currency: str | None = None
    minimum_subtotal: Decimal | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    active: bool = True
