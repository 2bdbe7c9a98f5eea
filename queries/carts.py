"""Reads of the ``carts`` read model (MongoDB). Never writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

PROJECTION = "carts"
COLLECTION = "carts"
Document = dict[str, Any]


class CartStoreUnavailable(Exception):
    """The carts read store could not be reached (cart writes still work)."""


@dataclass(frozen=True)
class CartLineView:
    line_id: str
    sku: str
    quantity: int
    unit_price: Decimal

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class CartShippingView:
    country_code: str
    region: str | None
    method_code: str | None


@dataclass(frozen=True)
class CartView:
    cart_id: str
    customer_id: str | None
    status: str
    currency_code: str
    lines: tuple[CartLineView, ...]
    version: int
    created_at: datetime
    updated_at: datetime
    merged_into: str | None = None
    shipping: CartShippingView | None = None
    discount_code: str | None = None

    @property
    def total_quantity(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal(0))


class CartQueries:
    def __init__(self, db: AsyncDatabase[Document], collection: str = COLLECTION) -> None:
        self._db = db
        self._collection = collection

    @property
    def _carts(self) -> AsyncCollection[Document]:
        return self._db[self._collection]

    async def get(self, cart_id: str) -> CartView | None:
        try:
            doc = await self._carts.find_one({"_id": cart_id})
        except PyMongoError as exc:
            raise CartStoreUnavailable(str(exc)) from exc
        return None if doc is None else to_view(doc)

    async def active_for_customer(self, customer_id: str) -> CartView | None:
        """The customer's most recently updated ACTIVE cart."""
        try:
            doc = await self._carts.find_one(
                {"customer_id": customer_id, "status": "ACTIVE"},
                sort=[("updated_at", DESCENDING), ("created_at", DESCENDING)],
            )
        except PyMongoError as exc:
            raise CartStoreUnavailable(str(exc)) from exc
        return None if doc is None else to_view(doc)


def to_view(doc: Document) -> CartView:
    shipping = doc.get("shipping")
    return CartView(
        cart_id=str(doc["_id"]),
        customer_id=doc.get("customer_id"),
        status=str(doc["status"]),
        currency_code=str(doc["currency_code"]),
        lines=tuple(
            CartLineView(
                str(line["id"]), str(line["sku"]), int(line["quantity"]), Decimal(line["unit_price"])
            )
            for line in doc["lines"]
        ),
        version=int(doc["version"]),
        created_at=_aware(doc["created_at"]),
        updated_at=_aware(doc["updated_at"]),
        merged_into=doc.get("merged_into"),
        shipping=None if shipping is None else CartShippingView(**shipping),
        discount_code=doc.get("discount_code"),
    )


def _aware(value: datetime) -> datetime:
    # MongoDB stores UTC; clients without tz_aware hand back naive datetimes.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
