"""Catalog events: each carries the product's full state after the change.

Full-state events keep projections trivial (the newest event is the document)
and make a replay after a schema change need no historical fold logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from commands.events.base import Event

STREAM_TYPE = "product"
ACTIVE = "active"
WITHDRAWN = "withdrawn"


def product_stream_id(product_id: str) -> str:
    return f"product-{product_id}"


@dataclass(frozen=True)
class ProductVariantState:
    sku: str
    title: str
    price: Decimal
    # ACTIVE or WITHDRAWN: a variant removed from its product is kept, withdrawn.
    status: str


@dataclass(frozen=True)
class ProductState:
    product_id: str
    handle: str
    title: str
    description: str
    brand: str | None
    categories: tuple[str, ...]
    currency: str
    variants: tuple[ProductVariantState, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def active_variants(self) -> tuple[ProductVariantState, ...]:
        return tuple(v for v in self.variants if v.status == ACTIVE)


@dataclass(frozen=True)
class ProductCreated(Event):
    stream_type: ClassVar[str] = STREAM_TYPE
    product: ProductState


@dataclass(frozen=True)
class ProductUpdated(Event):
    stream_type: ClassVar[str] = STREAM_TYPE
    product: ProductState
    # Names of the top-level fields that changed (for the support timeline).
    changed: tuple[str, ...] = ()


PRODUCT_EVENT_TYPES = frozenset({ProductCreated.event_type(), ProductUpdated.event_type()})
