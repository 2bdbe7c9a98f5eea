"""Checkout revalidation and repricing, pure: the cart as captured against the catalog as it is now.

The buyer pays what the catalog says at checkout. A line whose price moved since
it was captured is refused with PRICE_CHANGED (the buyer confirms the new price
by updating the line), never silently charged at either price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from commands.domain.cart import Cart, CartEmpty, Line
from commands.domain.currencies import minor_units
from commands.domain.money import STANDARD
from commands.errors import DomainError, NotFound, ValidationErrors
from commands.events.order import OrderLineData


class PriceChanged(DomainError):
    code = "PRICE_CHANGED"


@dataclass(frozen=True)
class Variant:
    """A catalog variant as the catalog tables hold it now."""

    sku: str
    title: str
    price: Decimal
    currency: str
    active: bool
    tax_category: str = STANDARD


@dataclass(frozen=True)
class PricedOrder:
    currency: str
    lines: tuple[OrderLineData, ...]
    subtotal: Decimal
    total: Decimal


def _money(amount: Decimal, currency: str) -> Decimal:
    decimals = minor_units(currency)
    return amount.quantize(Decimal(1).scaleb(-(2 if decimals is None else decimals)))


def _check_line(line: Line, variant: Variant | None, currency: str) -> DomainError | None:
    if variant is None or not variant.active:
        return NotFound(f"SKU {line.sku} is no longer for sale; remove it from the cart", ["cartId"])
    if variant.currency != currency or variant.price != line.unit_price:
        return PriceChanged(
            f"the price of {line.sku} changed from {_money(line.unit_price, currency)} {currency} "
            f"to {_money(variant.price, variant.currency)} {variant.currency}; review the cart",
            ["cartId"],
        )
    return None


def price_cart(cart: Cart, variants: Mapping[str, Variant]) -> PricedOrder:
    """Order lines at today's catalog prices, or every reason the cart cannot be bought as it is."""
    if not cart.lines:
        raise CartEmpty("the cart is empty", ["cartId"])
    currency = cart.currency_code
    errors = [e for line in cart.lines if (e := _check_line(line, variants.get(line.sku), currency))]
    if errors:
        raise ValidationErrors(errors)
    lines = tuple(_order_line(line, variants[line.sku], currency) for line in cart.lines)
    subtotal = _money(sum((line.line_total for line in lines), Decimal(0)), currency)
    return PricedOrder(currency, lines, subtotal, subtotal)


def _order_line(line: Line, variant: Variant, currency: str) -> OrderLineData:
    unit = _money(variant.price, currency)
    return OrderLineData(
        sku=line.sku,
        title=variant.title,
        quantity=line.quantity,
        unit_price=unit,
        line_total=_money(unit * line.quantity, currency),
    )


def skus(cart: Cart) -> Sequence[str]:
    return sorted({line.sku for line in cart.lines})
