"""Helpers for cart tests: catalog rows inserted directly (cart tests stay independent of the
catalog commands), ledger inspection, and the fold a cart document must equal."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from commands.domain import cart as domain
from commands.handlers.cart import stream_id
from commands.messages.cart import CartActor
from commands.store.ledger.reader import RecordedEvent, load_stream
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.container import Container

META = MessageMetadata(actor="test")
GUEST = CartActor()
SUPPORT = CartActor(staff=True)

# sku -> (price, currency)
CATALOG: dict[str, tuple[str, str]] = {
    "TEE-S": ("19.99", "USD"),
    "TEE-M": ("19.99", "USD"),
    "MUG": ("8.50", "USD"),
    "CAP": ("12.00", "USD"),
    "EURO-BAG": ("30.00", "EUR"),
}


def customer(customer_id: str) -> CartActor:
    return CartActor(customer_id=customer_id)


async def seed_catalog(container: Container, variants: dict[str, tuple[str, str]] | None = None) -> None:
    """One product per SKU, inserted straight into the catalog tables."""
    async with container.engine.begin() as conn:
        for sku, (price, currency) in (variants or CATALOG).items():
            product_id = uuid.uuid4()
            await conn.execute(
                text(
                    "INSERT INTO catalog_products (id, handle, title, currency) "
                    "VALUES (:id, :handle, :title, :currency)"
                ),
                {
                    "id": product_id,
                    "handle": f"p-{sku.lower()}",
                    "title": f"Product {sku}",
                    "currency": currency,
                },
            )
            await conn.execute(
                text(
                    "INSERT INTO catalog_variants (sku, product_id, title, price, currency) "
                    "VALUES (:sku, :pid, :title, :price, :currency)"
                ),
                {"sku": sku, "pid": product_id, "title": sku, "price": Decimal(price), "currency": currency},
            )


async def set_variant(
    container: Container, sku: str, *, price: str | None = None, status: str | None = None
) -> None:
    async with container.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE catalog_variants SET price = coalesce(:price, price), "
                "status = coalesce(:status, status) WHERE sku = :sku"
            ),
            {"sku": sku, "price": None if price is None else Decimal(price), "status": status},
        )


async def ledger_size(container: Container) -> int:
    async with container.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM ledger_events"))).scalar_one())


async def cart_stream(container: Container, cart_id: str) -> list[RecordedEvent]:
    async with container.engine.connect() as conn:
        return await load_stream(conn, stream_id(cart_id))


async def folded(container: Container, cart_id: str) -> domain.Cart:
    return domain.fold(e.decode() for e in await cart_stream(container, cart_id))


async def owner_row(container: Container, cart_id: str) -> dict[str, Any] | None:
    async with container.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT customer_id, status, merged_into FROM customer_carts WHERE cart_id = :c"),
                {"c": cart_id},
            )
        ).first()
    return None if row is None else dict(row._mapping)


def expected_document(cart: domain.Cart) -> dict[str, Any]:
    """The parts of a cart document that the ledger fold determines."""
    return {
        "_id": cart.cart_id,
        "customer_id": cart.customer_id,
        "status": cart.status,
        "currency_code": cart.currency_code,
        "merged_into": cart.merged_into,
        "version": cart.version,
        "lines": [
            {
                "id": line.line_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
            }
            for line in cart.lines
        ],
    }


def document_state(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        key: doc.get(key)
        for key in ("_id", "customer_id", "status", "currency_code", "merged_into", "version", "lines")
    }
