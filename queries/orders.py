"""Reads of the ``orders`` read model (PostgreSQL ``order_view``). Never writes.

Freshness is the gateway's business (``FreshnessService.freshness(PROJECTION)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from queries import cursors

PROJECTION = "orders"
TABLE = "order_view"
_COLUMNS = (
    "order_id, number, customer_id, email, cart_id, status, payment_status, payment_amount, currency, "
    "provider_reference, lines, subtotal, total, shipping_address, history, stream_version, "
    "created_at, updated_at, totals"
)


class InvalidCursor(ValueError):
    """An ``after`` cursor this service did not hand out."""


@dataclass(frozen=True)
class OrderLineView:
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class AddressView:
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country_code: str
    region: str | None = None


@dataclass(frozen=True)
class TaxLineView:
    rate: Decimal
    base: Decimal
    amount: Decimal


@dataclass(frozen=True)
class OrderMoneyView:
    """What an order charges beyond its lines; all zero for orders without shipping, tax or discounts."""

    shipping: Decimal = Decimal(0)
    discounts: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    tax_lines: tuple[TaxLineView, ...] = ()
    prices_include_tax: bool = False
    shipping_method: str | None = None
    discount_code: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    type: str
    at: datetime
    position: int


@dataclass(frozen=True)
class OrderView:
    order_id: str
    number: str
    customer_id: str | None
    email: str
    cart_id: str
    status: str
    payment_status: str
    payment_amount: Decimal
    currency: str
    provider_reference: str | None
    lines: tuple[OrderLineView, ...]
    subtotal: Decimal
    total: Decimal
    shipping_address: AddressView
    history: tuple[HistoryEntry, ...]
    version: int
    created_at: datetime
    updated_at: datetime
    money: OrderMoneyView = field(default_factory=OrderMoneyView)

    @property
    def cursor(self) -> OrderCursor:
        return OrderCursor(self.created_at, self.order_id)


@dataclass(frozen=True)
class OrderCursor:
    """Keyset position in (created_at desc, order_id) order."""

    created_at: datetime
    order_id: str

    def encode(self) -> str:
        return cursors.encode(["o1", self.created_at.isoformat(), self.order_id])

    @classmethod
    def decode(cls, value: str) -> OrderCursor:
        try:
            tag, at, order_id = cursors.decode(value)
            created_at = datetime.fromisoformat(at)
        except (ValueError, TypeError):
            raise InvalidCursor("after is not a cursor from this connection") from None
        if tag != "o1" or not isinstance(order_id, str) or created_at.tzinfo is None:
            raise InvalidCursor("after is not a cursor from this connection")
        return cls(created_at, order_id)


@dataclass(frozen=True)
class OrderPage:
    orders: tuple[OrderView, ...]
    has_next_page: bool


class OrderQueries:
    def __init__(self, engine: AsyncEngine, table: str = TABLE) -> None:
        self._engine = engine
        self._table = table

    async def get(self, order_id: str) -> OrderView | None:
        return (await self.get_many([order_id])).get(order_id)

    async def get_many(self, order_ids: Sequence[str]) -> dict[str, OrderView]:
        """Orders by id, one query however many ids; missing ids are absent from the result."""
        if not order_ids:
            return {}
        async with self._engine.connect() as conn:
            result = await conn.execute(
                text(f"SELECT {_COLUMNS} FROM {self._table} WHERE order_id = ANY(CAST(:ids AS text[]))"),
                {"ids": list(dict.fromkeys(order_ids))},
            )
            return {row.order_id: to_view(row) for row in result}

    async def list_for_customer(
        self, customer_id: str, *, status: str | None, first: int, after: OrderCursor | None
    ) -> OrderPage:
        """The customer's orders newest first, ``first`` of them after ``after``."""
        clauses = ["customer_id = :customer_id"]
        params: dict[str, Any] = {"customer_id": customer_id, "limit": first + 1}
        if status is not None:
            clauses.append("status = :status")
            params["status"] = status
        if after is not None:
            clauses.append("(created_at < :at OR (created_at = :at AND order_id > :after_id))")
            params.update(at=after.created_at, after_id=after.order_id)
        sql = (
            f"SELECT {_COLUMNS} FROM {self._table} WHERE {' AND '.join(clauses)} "
            "ORDER BY created_at DESC, order_id LIMIT :limit"
        )
        async with self._engine.connect() as conn:
            rows = [to_view(row) for row in await conn.execute(text(sql), params)]
        return OrderPage(tuple(rows[:first]), len(rows) > first)


def to_view(row: Any) -> OrderView:
    address = row.shipping_address
    return OrderView(
        order_id=row.order_id,
        number=row.number,
        customer_id=row.customer_id,
        email=row.email,
        cart_id=row.cart_id,
        status=row.status,
        payment_status=row.payment_status,
        payment_amount=row.payment_amount,
        currency=row.currency,
        provider_reference=row.provider_reference,
        lines=tuple(
            OrderLineView(
                sku=line["sku"],
                title=line["title"],
                quantity=int(line["quantity"]),
                unit_price=Decimal(line["unit_price"]),
                line_total=Decimal(line["line_total"]),
            )
            for line in row.lines
        ),
        subtotal=row.subtotal,
        total=row.total,
        shipping_address=AddressView(
            name=address["name"],
            line1=address["line1"],
            line2=address.get("line2"),
            city=address["city"],
            postal_code=address["postal_code"],
            country_code=address["country_code"],
            region=address.get("region"),
        ),
        history=tuple(
            HistoryEntry(entry["type"], datetime.fromisoformat(entry["at"]), int(entry["position"]))
            for entry in row.history
        ),
        version=row.stream_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        money=OrderMoneyView() if row.totals is None else _money(row.totals),
    )


def _money(totals: dict[str, Any]) -> OrderMoneyView:
    return OrderMoneyView(
        shipping=Decimal(totals["shipping"]),
        discounts=Decimal(totals["discounts"]),
        tax=Decimal(totals["tax"]),
        tax_lines=tuple(
            TaxLineView(Decimal(t["rate"]), Decimal(t["base"]), Decimal(t["amount"]))
            for t in totals["tax_lines"]
        ),
        prices_include_tax=bool(totals["prices_include_tax"]),
        shipping_method=totals.get("shipping_method"),
        discount_code=totals.get("discount_code"),
    )
