"""Money configuration mutations (admin): shipping methods, tax rates and policies, discount codes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry

from commands.bus import Command
from commands.errors import DomainError
from commands.messages.money import (
    DefineDiscountCode,
    DefineShippingMethod,
    MoneyConfigResult,
    SetTaxPolicy,
    SetTaxRate,
)
from gateway.edge.context import Info
from gateway.schema.common import UserError
from gateway.schema.scalars import Position, optional_position


@strawberry.type
class MoneyConfigPayload:
    position: Position | None
    user_errors: list[UserError]


@strawberry.input
class CountryPriceInput:
    country_code: str
    price: Decimal


@strawberry.input(description="A shipping method, created or replaced by its code.")
class ShippingMethodInput:
    code: str
    name: str
    currency_code: str
    price: Decimal
    free_above: Decimal | None = strawberry.field(
        default=None, description="Subtotal (before discounts) from which shipping is free."
    )
    country_prices: list[CountryPriceInput] | None = None
    countries: list[str] | None = strawberry.field(
        default=None, description="Destination countries served; none or empty: every country."
    )
    active: bool = True


@strawberry.input(description="A tax rate for a country (or one of its regions) and a tax category.")
class TaxRateInput:
    country_code: str
    category: str = strawberry.field(description="standard, reduced or zero.")
    rate: Decimal | None = strawberry.field(description="A fraction (0.19 is 19 %); null removes the rate.")
    region: str | None = None


@strawberry.input(description="How one currency's prices are entered and its tax rounded.")
class TaxPolicyInput:
    currency_code: str
    prices_include_tax: bool
    rounding: str = strawberry.field(default="PER_LINE", description="PER_LINE or PER_TOTAL.")


@strawberry.input(description="A discount code, created or replaced (its use count is kept).")
class DiscountCodeInput:
    code: str
    kind: str = strawberry.field(description="PERCENTAGE or FIXED.")
    value: Decimal = strawberry.field(
        description="PERCENTAGE: percent off (10 is 10 %, unlike a tax rate's fraction); "
        "FIXED: an amount in currencyCode."
    )
    target: str = strawberry.field(default="SUBTOTAL", description="SUBTOTAL or SHIPPING.")
    currency_code: str | None = None
    minimum_subtotal: Decimal | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    active: bool = True


async def _run(info: Info, command: Command[MoneyConfigResult]) -> MoneyConfigPayload:
    context = info.context
    context.principal.require("admin")
    try:
        result: MoneyConfigResult = await context.bus.dispatch(command, context.metadata())
    except DomainError as error:
        return MoneyConfigPayload(position=None, user_errors=UserError.from_domain(error, ["input"]))
    return MoneyConfigPayload(position=optional_position(result.position), user_errors=[])


async def resolve_shipping_method_define(info: Info, input: ShippingMethodInput) -> MoneyConfigPayload:
    command = DefineShippingMethod(
        code=input.code,
        name=input.name,
        currency=input.currency_code,
        price=input.price,
        free_above=input.free_above,
        country_prices=tuple((c.country_code, c.price) for c in input.country_prices or ()),
        countries=tuple(input.countries or ()),
        active=input.active,
    )
    return await _run(info, command)


async def resolve_tax_rate_set(info: Info, input: TaxRateInput) -> MoneyConfigPayload:
    return await _run(info, SetTaxRate(input.country_code, input.category, input.rate, input.region))


async def resolve_tax_policy_set(info: Info, input: TaxPolicyInput) -> MoneyConfigPayload:
    return await _run(info, SetTaxPolicy(input.currency_code, input.prices_include_tax, input.rounding))


async def resolve_discount_code_define(info: Info, input: DiscountCodeInput) -> MoneyConfigPayload:
    fields: dict[str, Any] = {
        "code": input.code,
        "kind": input.kind,
        "value": input.value,
        "target": input.target,
        "currency": input.currency_code,
        "minimum_subtotal": input.minimum_subtotal,
        "starts_at": input.starts_at,
        "ends_at": input.ends_at,
        "usage_limit": input.usage_limit,
        "per_customer_limit": input.per_customer_limit,
        "active": input.active,
    }
    return await _run(info, DefineDiscountCode(**fields))
