"""Catalog events: each carries the product's full state after the change.

Full-state events keep projections trivial (the newest event is the document)
and make a replay after a schema change need no historical fold logic.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

import msgspec

from commands.events.base import Event

STREAM_TYPE = "product"
ACTIVE = "active"
WITHDRAWN = "withdrawn"


def product_stream_id(product_id: str) -> str:
    return f"product-{product_id}"


class ProductVariantState(msgspec.Struct, frozen=True, omit_defaults=True):
    sku: str
    title: str
    price: Decimal
    # ACTIVE or WITHDRAWN: a variant removed from its product is kept, withdrawn.
    status: str
    # 'standard', 'reduced' or 'zero' (commands.domain.money); absent (standard) in older events.
    tax_category: str = "standard"


class ProductState(msgspec.Struct, frozen=True):
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


class ProductCreated(Event, frozen=True):
    stream_type: ClassVar[str] = STREAM_TYPE
    product: ProductState


class ProductUpdated(Event, frozen=True):
    stream_type: ClassVar[str] = STREAM_TYPE
    product: ProductState
    # Names of the top-level fields that changed (for the support timeline).
    changed: tuple[str, ...] = ()


PRODUCT_EVENT_TYPES = frozenset({ProductCreated.event_type(), ProductUpdated.event_type()})
