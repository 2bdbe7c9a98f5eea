"""A cart's quote: its eligible shipping methods and its totals, from the ``pricing`` read model.

The quote uses the same pure rules as checkout (``commands.domain.money``); checkout
reprices from the configuration as it is then, so a total shown here that has
changed meanwhile is PRICE_CHANGED when the buyer sends it as ``expectedTotal``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import strawberry

from commands.domain import money
from commands.errors import DomainError
from gateway.edge.context import Info
from gateway.schema.common import Money, UserError
from gateway.schema.list_sizes import bounded
from gateway.schema.orders import TaxLine
from queries.carts import CartView
from queries.pricing import PricingView


@strawberry.type(description="Where the cart ships (what its tax and shipping are quoted for) and how.")
class CartShipping:
    country_code: str
    region: str | None
    method_code: str | None


@strawberry.type(description="A shipping method that can ship this cart to its destination, with its price.")
class ShippingOption:
    code: str
    name: str
    price: Money


@strawberry.type(
    description="What the cart would cost now; checkout reprices and says PRICE_CHANGED if it moved."
)
class CartTotals:
    subtotal: Money
    shipping: Money
    discounts: Money
    tax: Money = strawberry.field(description="Included in the prices when `pricesIncludeTax`, else added.")
    tax_lines: list[TaxLine]
    total: Money
    prices_include_tax: bool
    discount_code_error: UserError | None = strawberry.field(
        description="Why the applied code does not count (yet), e.g. below its minimum subtotal."
    )


async def shipping_options(info: Info, view: CartView) -> list[ShippingOption]:
    pricing = await _pricing(info, view)
    eligible = money.eligible_methods(
        _methods(pricing), view.currency_code, _destination(view), view.subtotal
    )
    return [
        ShippingOption(code=m.code, name=m.name, price=Money.of(p, view.currency_code))
        for m, p in bounded("Cart", "shippingMethods", eligible)
    ]


async def totals(info: Info, view: CartView) -> CartTotals:
    pricing = await _pricing(info, view)
    currency = view.currency_code
    destination = _destination(view)
    subtotal = money.round_money(view.subtotal, currency)
    shipping = Decimal(0)
    method_code = None if view.shipping is None else view.shipping.method_code
    method = next((m for m in _methods(pricing) if m.code == method_code), None)
    if method is not None:
        shipping = method.price_for(currency, destination, subtotal) or Decimal(0)
    discount, error = _discount(pricing, view.discount_code, currency, subtotal)
    quoted = money.compute_totals(
        [
            money.PricedLine(
                line.sku, line.quantity, line.unit_price, pricing.tax_categories.get(line.sku, money.STANDARD)
            )
            for line in view.lines
        ],
        currency,
        policy=_policy(pricing),
        rates=_rates(pricing),
        destination=destination,
        shipping=shipping,
        discount=discount,
    )
    return CartTotals(
        subtotal=Money.of(quoted.subtotal, currency),
        shipping=Money.of(quoted.shipping, currency),
        discounts=Money.of(quoted.discounts, currency),
        tax=Money.of(quoted.tax, currency),
        tax_lines=[
            TaxLine(rate=t.rate, base=Money.of(t.base, currency), amount=Money.of(t.amount, currency))
            for t in quoted.tax_lines
        ],
        total=Money.of(quoted.total, currency),
        prices_include_tax=quoted.prices_include_tax,
        discount_code_error=None if error is None else UserError.from_domain(error)[0],
    )


async def _pricing(info: Info, view: CartView) -> PricingView:
    """The cart's pricing inputs, read once per request (`shippingMethods` and `totals` both ask)."""
    country = None if view.shipping is None else view.shipping.country_code
    skus = sorted({line.sku for line in view.lines})
    key = "pricing:" + repr((view.currency_code, country, tuple(skus), view.discount_code))
    reading: asyncio.Future[PricingView] = info.context.loader(
        key,
        lambda: asyncio.ensure_future(
            info.context.services.pricing.for_cart(view.currency_code, country, skus, view.discount_code)
        ),
    )
    return await reading


def _destination(view: CartView) -> money.Destination | None:
    shipping = view.shipping
    return None if shipping is None else money.Destination(shipping.country_code, shipping.region)


def _methods(pricing: PricingView) -> list[money.ShippingMethod]:
    return [
        money.ShippingMethod(
            code=d["code"],
            name=d["name"],
            currency=d["currency"],
            price=Decimal(d["price"]),
            free_above=_decimal(d.get("free_above")),
            country_prices=tuple(
                (c["country_code"], Decimal(c["price"])) for c in d.get("country_prices", [])
            ),
            countries=tuple(d.get("countries", [])),
            active=bool(d.get("active", True)),
        )
        for d in pricing.shipping_methods
    ]


def _rates(pricing: PricingView) -> list[money.TaxRate]:
    return [
        money.TaxRate(d["country_code"], d["category"], Decimal(d["rate"]), d.get("region"))
        for d in pricing.tax_rates
    ]


def _policy(pricing: PricingView) -> money.TaxPolicy:
    d = pricing.tax_policy
    return money.TaxPolicy() if d is None else money.TaxPolicy(bool(d["prices_include_tax"]), d["rounding"])


def _discount(
    pricing: PricingView, code: str | None, currency: str, subtotal: Decimal
) -> tuple[money.DiscountCode | None, DomainError | None]:
    d = pricing.discount_code
    if code is None:
        return None, None
    if d is None:
        return None, money.DiscountCodeInvalid(f"there is no code {code}", ["discountCode"])
    discount = money.DiscountCode(
        code=d["code"],
        kind=d["kind"],
        value=Decimal(d["value"]),
        target=d["target"],
        currency=d.get("currency"),
        minimum_subtotal=_decimal(d.get("minimum_subtotal")),
        starts_at=_datetime(d.get("starts_at")),
        ends_at=_datetime(d.get("ends_at")),
        usage_limit=d.get("usage_limit"),
        per_customer_limit=d.get("per_customer_limit"),
        active=bool(d.get("active", True)),
    )
    try:
        money.check_discount(discount, currency, subtotal, datetime.now(UTC), ["discountCode"])
    except DomainError as error:
        return None, error
    return discount, None


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _datetime(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
