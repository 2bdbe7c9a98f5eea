"""Catalog commands."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from commands.bus import Command


@dataclass(frozen=True)
class UpsertProductResult:
    product_id: str
    # Position of the event appended; None when the upsert changed nothing.
    position: int | None
    # Position the read model must reach to show this product as upserted
    # (the stream's last event, also when nothing was appended).
    read_position: int | None
    created: bool


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    title: str
    price: Decimal
    tax_category: str = "standard"


@dataclass(frozen=True)
class UpsertProduct(Command[UpsertProductResult]):
    """Create or replace the product with this handle (the natural key)."""

    handle: str
    title: str
    variants: tuple[VariantSpec, ...]
    description: str | None = None
    brand: str | None = None
    categories: tuple[str, ...] | None = None
    currency_code: str | None = None
