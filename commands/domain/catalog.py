"""Catalog aggregate: validate a product upsert and decide its event. Pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from msgspec.structs import replace

from commands.domain.currencies import DEFAULT_CURRENCY, minor_units
from commands.domain.money import STANDARD, TAX_CATEGORIES
from commands.errors import DomainError, InvalidInput, ValidationErrors
from commands.events.catalog import (
    ACTIVE,
    WITHDRAWN,
    ProductCreated,
    ProductState,
    ProductUpdated,
    ProductVariantState,
)

HANDLE_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_HANDLE = 120
MAX_SKU = 64  # catalog_variants.sku is varchar(64)
MAX_TITLE = 255
MAX_DESCRIPTION = 20_000
MAX_BRAND = 120
MAX_CATEGORIES = 20
MAX_CATEGORY = 80
MAX_VARIANTS = 100
# catalog_variants.price is numeric(18, 4).
MAX_PRICE = Decimal("99999999999999.9999")

_Fail = Callable[..., None]


@dataclass(frozen=True)
class VariantDraft:
    sku: str
    title: str
    price: Decimal
    tax_category: str = STANDARD


@dataclass(frozen=True)
class ProductDraft:
    """A product as the caller wants it; ``validate`` returns the normalized form."""

    handle: str
    title: str
    variants: tuple[VariantDraft, ...]
    description: str | None = None
    brand: str | None = None
    categories: tuple[str, ...] | None = None
    currency: str | None = None


def validate(draft: ProductDraft) -> ProductDraft:
    """Normalize ``draft`` or raise ValidationErrors with one entry per offending field."""
    errors: list[DomainError] = []

    def fail(message: str, *field: str) -> None:
        errors.append(InvalidInput(message, list(field)))

    handle = draft.handle.strip()
    if not handle:
        fail("handle must not be empty", "handle")
    elif len(handle) > MAX_HANDLE:
        fail(f"handle must be at most {MAX_HANDLE} characters", "handle")
    elif not HANDLE_PATTERN.fullmatch(handle):
        fail("handle must be lower-case letters and digits separated by single hyphens", "handle")

    title = draft.title.strip()
    if not title:
        fail("title must not be empty", "title")
    elif len(title) > MAX_TITLE:
        fail(f"title must be at most {MAX_TITLE} characters", "title")

    description = (draft.description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        fail(f"description must be at most {MAX_DESCRIPTION} characters", "description")

    brand = (draft.brand or "").strip() or None
    if brand is not None and len(brand) > MAX_BRAND:
        fail(f"brand must be at most {MAX_BRAND} characters", "brand")

    categories: list[str] = []
    for i, raw in enumerate(draft.categories or ()):
        category = raw.strip()
        if not category:
            fail("category must not be empty", "categories", str(i))
        elif len(category) > MAX_CATEGORY:
            fail(f"category must be at most {MAX_CATEGORY} characters", "categories", str(i))
        elif category not in categories:
            categories.append(category)
    if len(categories) > MAX_CATEGORIES:
        fail(f"at most {MAX_CATEGORIES} categories", "categories")

    currency = (draft.currency or DEFAULT_CURRENCY).strip().upper()
    decimals = minor_units(currency)
    if decimals is None:
        fail(f"{draft.currency!r} is not an ISO 4217 currency code", "currencyCode")

    variants = _validate_variants(draft.variants, decimals, fail)
    if errors:
        raise ValidationErrors(errors)
    return ProductDraft(
        handle=handle,
        title=title,
        variants=variants,
        description=description,
        brand=brand,
        categories=tuple(categories),
        currency=currency,
    )


def _validate_variants(
    drafts: tuple[VariantDraft, ...], decimals: int | None, fail: _Fail
) -> tuple[VariantDraft, ...]:
    if not drafts:
        fail("a product needs at least one variant", "variants")
    elif len(drafts) > MAX_VARIANTS:
        fail(f"at most {MAX_VARIANTS} variants", "variants")
    seen: set[str] = set()
    variants: list[VariantDraft] = []
    for i, variant in enumerate(drafts):
        at = ("variants", str(i))
        sku = variant.sku.strip()
        if not sku:
            fail("sku must not be empty", *at, "sku")
        elif len(sku) > MAX_SKU:
            fail(f"sku must be at most {MAX_SKU} characters", *at, "sku")
        elif not SKU_PATTERN.fullmatch(sku):
            fail("sku may hold letters, digits, '.', '_' and '-', and starts alphanumeric", *at, "sku")
        elif sku in seen:
            fail(f"sku {sku} appears more than once", *at, "sku")
        seen.add(sku)
        title = variant.title.strip()
        if not title:
            fail("variant title must not be empty", *at, "title")
        elif len(title) > MAX_TITLE:
            fail(f"variant title must be at most {MAX_TITLE} characters", *at, "title")
        price = variant.price
        if not price.is_finite():
            fail("price must be a number", *at, "price")
        elif price < 0:
            fail("price must not be negative", *at, "price")
        elif price > MAX_PRICE:
            fail("price is too large", *at, "price")
        elif decimals is not None and _decimals_of(price) > decimals:
            fail(f"price has more than {decimals} decimals for this currency", *at, "price")
        elif decimals is not None:
            price = price.quantize(Decimal(1).scaleb(-decimals))
        if variant.tax_category not in TAX_CATEGORIES:
            fail(f"taxCategory must be one of {', '.join(TAX_CATEGORIES)}", *at, "taxCategory")
        variants.append(VariantDraft(sku=sku, title=title, price=price, tax_category=variant.tax_category))
    return tuple(variants)


def _decimals_of(value: Decimal) -> int:
    """Significant decimals: 19.90 has one, 19.99 two, 20 none."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def check_sku_owners(draft: ProductDraft, owners: Mapping[str, str], product_id: str) -> None:
    """Refuse SKUs that belong to another product (``owners``: sku -> owning product id)."""
    errors: list[DomainError] = [
        InvalidInput(f"sku {v.sku} belongs to another product", ["variants", str(i), "sku"])
        for i, v in enumerate(draft.variants)
        if owners.get(v.sku, product_id) != product_id
    ]
    if errors:
        raise ValidationErrors(errors)


def next_state(
    current: ProductState | None, draft: ProductDraft, product_id: str, now: datetime
) -> ProductState:
    """The product after applying ``draft`` (validated): listed variants active in the given
    order, then previously known variants that are no longer listed, withdrawn."""
    listed = {v.sku for v in draft.variants}
    variants = [ProductVariantState(v.sku, v.title, v.price, ACTIVE, v.tax_category) for v in draft.variants]
    if current is not None:
        variants += [replace(v, status=WITHDRAWN) for v in current.variants if v.sku not in listed]
    assert draft.currency is not None and draft.description is not None and draft.categories is not None
    return ProductState(
        product_id=product_id,
        handle=draft.handle,
        title=draft.title,
        description=draft.description,
        brand=draft.brand,
        categories=draft.categories,
        currency=draft.currency,
        variants=tuple(variants),
        created_at=current.created_at if current is not None else now,
        updated_at=now,
    )


_COMPARED = ("handle", "title", "description", "brand", "categories", "currency", "variants")


def changed_fields(before: ProductState, after: ProductState) -> tuple[str, ...]:
    return tuple(name for name in _COMPARED if getattr(before, name) != getattr(after, name))


def decide_upsert(
    current: ProductState | None, draft: ProductDraft, product_id: str, now: datetime
) -> ProductCreated | ProductUpdated | None:
    """The event for upserting ``draft`` (validated) onto ``current``; None when nothing changes."""
    after = next_state(current, draft, product_id, now)
    if current is None:
        return ProductCreated(product=after)
    changed = changed_fields(current, after)
    if not changed:
        return None
    return ProductUpdated(product=after, changed=changed)


def evolve(state: ProductState | None, event: ProductCreated | ProductUpdated) -> ProductState:
    """Fold one event: every catalog event carries the whole state."""
    del state
    return event.product
