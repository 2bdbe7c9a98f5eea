"""Cart events (stream ``cart-<cart id>``). One event per accepted cart command,
so a cart's version is its stream version.

Each event carries everything the read model needs (SKU, resulting quantity,
captured unit price), so projections fold carts without the catalog.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import msgspec

from commands.events.base import Event


class CartLineSnapshot(msgspec.Struct, frozen=True):
    """A line as it stands after the event: ``quantity`` is the resulting total."""

    line_id: str
    sku: str
    quantity: int
    unit_price: Decimal


class CartCreated(Event, frozen=True):
    stream_type: ClassVar[str] = "cart"
    cart_id: str
    currency_code: str
    customer_id: str | None = None
    lines: tuple[CartLineSnapshot, ...] = ()


class CartLinesAdded(Event, frozen=True):
    """New lines, or more of a SKU already in the cart (same line id, higher quantity)."""

    stream_type: ClassVar[str] = "cart"
    lines: tuple[CartLineSnapshot, ...]


class CartLineQuantitiesChanged(Event, frozen=True):
    """Quantities set by the buyer; a quantity of 0 removed the line (listed in ``removed_line_ids``)."""

    stream_type: ClassVar[str] = "cart"
    lines: tuple[CartLineSnapshot, ...]
    removed_line_ids: tuple[str, ...] = ()


class CartLinesRemoved(Event, frozen=True):
    stream_type: ClassVar[str] = "cart"
    line_ids: tuple[str, ...]


class CartCustomerAttached(Event, frozen=True):
    stream_type: ClassVar[str] = "cart"
    customer_id: str


class CartMerged(Event, frozen=True):
    """This (guest) cart was merged into ``into_cart_id`` and now belongs to ``customer_id``."""

    stream_type: ClassVar[str] = "cart"
    into_cart_id: str
    customer_id: str


class CartLinesMergedIn(Event, frozen=True):
    """The surviving cart took over the lines of ``from_cart_id``.

    ``dropped_skus`` did not fit (line limit) and were left behind in the merged cart.
    """

    stream_type: ClassVar[str] = "cart"
    from_cart_id: str
    lines: tuple[CartLineSnapshot, ...]
    dropped_skus: tuple[str, ...] = ()


class CartCheckedOut(Event, frozen=True):
    stream_type: ClassVar[str] = "cart"
    order_id: str


class CartShippingChosen(Event, frozen=True):
    """Where the cart ships (what its tax and shipping are quoted for) and by which method, if chosen."""

    stream_type: ClassVar[str] = "cart"
    country_code: str
    region: str | None = None
    method_code: str | None = None


class CartDiscountCodeApplied(Event, frozen=True):
    """The code replaces any code applied before (one code per cart)."""

    stream_type: ClassVar[str] = "cart"
    code: str


class CartDiscountCodeRemoved(Event, frozen=True):
    stream_type: ClassVar[str] = "cart"
    code: str


CART_EVENTS: tuple[type[Event], ...] = (
    CartCreated,
    CartLinesAdded,
    CartLineQuantitiesChanged,
    CartLinesRemoved,
    CartCustomerAttached,
    CartMerged,
    CartLinesMergedIn,
    CartCheckedOut,
    CartShippingChosen,
    CartDiscountCodeApplied,
    CartDiscountCodeRemoved,
)
