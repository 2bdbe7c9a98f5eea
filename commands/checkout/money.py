"""Checkout money: shipping, discount and tax on top of the repriced lines, in phase 1's transaction.

A store with no shipping methods, no tax rates and no code given prices an order
exactly as before: the lines' sum, and no ``totals`` on ``OrderPlaced``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from commands.domain import money
from commands.domain.money import DiscountCode, DiscountCodeInvalid, ShippingMethod, Totals
from commands.domain.pricing import PriceChanged, PricedOrder
from commands.events.order import AddressData, OrderTotalsData, TaxLineData
from commands.money import config as money_config
from commands.store.unit_of_work import UnitOfWork

SHIPPING_FIELD = ("shippingMethod",)
DISCOUNT_FIELD = ("discountCode",)
TOTAL_FIELD = ("expectedTotal",)


@dataclass(frozen=True)
class CheckoutMoney:
    totals: Totals
    discount: DiscountCode | None
    # What OrderPlaced records; None when nothing but the lines is charged (as before).
    recorded: OrderTotalsData | None


async def price(
    uow: UnitOfWork,
    priced: PricedOrder,
    address: AddressData,
    *,
    tax_categories: Mapping[str, str],
    shipping_method: str | None,
    cart_shipping_method: str | None,
    discount_code: str | None,
    expected_total: Decimal | None,
    config: money_config.MoneyConfig | None = None,
) -> CheckoutMoney:
    """``shipping_method``: the checkout's own choice, which overrides the cart's; ``config``:
    the money configuration for the order's currency and the address's country, if read already."""
    currency = priced.currency
    if config is None:
        config = await money_config.load(uow.conn, currency, address.country_code)
    destination = money.Destination(address.country_code, address.region)
    chosen: tuple[ShippingMethod, Decimal] | None
    if shipping_method is not None:
        # Named at checkout: checked like a method named on the cart (``cartShippingSet``).
        chosen = money.choose_named_shipping(
            config.methods, shipping_method, currency, destination, priced.subtotal, SHIPPING_FIELD
        )
    else:
        # The cart's choice: let go if the store has no methods now, so such a cart still sells.
        chosen = money.choose_shipping(
            config.methods, cart_shipping_method, currency, destination, priced.subtotal, SHIPPING_FIELD
        )
    discount = None
    if discount_code is not None:
        discount = await money_config.load_discount(uow.conn, discount_code)
        if discount is None:
            raise DiscountCodeInvalid(f"there is no code {discount_code}", DISCOUNT_FIELD)
        money.check_discount(discount, currency, priced.subtotal, datetime.now(UTC), DISCOUNT_FIELD)
    totals = money.compute_totals(
        [
            money.PricedLine(
                line.sku, line.quantity, line.unit_price, tax_categories.get(line.sku, money.STANDARD)
            )
            for line in priced.lines
        ],
        currency,
        policy=config.policy,
        rates=config.rates,
        destination=destination,
        shipping=chosen[1] if chosen is not None else Decimal(0),
        shipping_method=chosen[0].code if chosen is not None else None,
        discount=discount,
    )
    if expected_total is not None and expected_total != totals.total:
        raise PriceChanged(
            f"the total is now {describe(totals)}, not {money.round_money(expected_total, currency)}; "
            "review the cart",
            TOTAL_FIELD,
        )
    charged = chosen is not None or discount is not None or bool(totals.tax_lines)
    return CheckoutMoney(totals, discount, record(totals) if charged else None)


def describe(totals: Totals) -> str:
    c = totals.currency
    return (
        f"{totals.total} {c} (subtotal {totals.subtotal}, shipping {totals.shipping}, "
        f"discounts {totals.discounts}, tax {totals.tax})"
    )


def record(totals: Totals) -> OrderTotalsData:
    return OrderTotalsData(
        subtotal=totals.subtotal,
        shipping=totals.shipping,
        discounts=totals.discounts,
        tax=totals.tax,
        total=totals.total,
        tax_lines=tuple(TaxLineData(t.rate, t.base, t.amount) for t in totals.tax_lines),
        prices_include_tax=totals.prices_include_tax,
        shipping_method=totals.shipping_method,
        discount_code=totals.discount_code,
    )
