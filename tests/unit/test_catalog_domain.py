"""Catalog aggregate: input validation (with field paths) and the upsert decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from commands.domain.catalog import (
    ProductDraft,
    VariantDraft,
    check_sku_owners,
    decide_upsert,
    validate,
)
from commands.errors import ValidationErrors
from commands.events.catalog import ProductCreated, ProductUpdated

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def draft(**changes: object) -> ProductDraft:
    base = ProductDraft(
        handle="trail-shoe",
        title="Trail Shoe",
        variants=(
            VariantDraft("TS-1", "Size 9", Decimal("99.90")),
            VariantDraft("TS-2", "Size 10", Decimal("99")),
        ),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def errors_of(value: ProductDraft) -> dict[tuple[str, ...], str]:
    with pytest.raises(ValidationErrors) as caught:
        validate(value)
    return {tuple(e.field or ()): e.code for e in caught.value.errors}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"handle": "Trail Shoe"}, ("handle",)),
        ({"handle": "trail--shoe"}, ("handle",)),
        ({"handle": "-trail"}, ("handle",)),
        ({"handle": "a" * 121}, ("handle",)),
        ({"title": "   "}, ("title",)),
        ({"variants": ()}, ("variants",)),
        ({"currency": "usdollar"}, ("currencyCode",)),
        ({"currency": "XAU"}, ("currencyCode",)),
        ({"categories": ("Shoes", " ")}, ("categories", "1")),
        ({"variants": (VariantDraft("TS-1", "A", Decimal(1)), VariantDraft("TS-1", "B", Decimal(2)))},
         ("variants", "1", "sku")),
        ({"variants": (VariantDraft("TS 1", "A", Decimal(1)),)}, ("variants", "0", "sku")),
        ({"variants": (VariantDraft("TS-1", "", Decimal(1)),)}, ("variants", "0", "title")),
        ({"variants": (VariantDraft("TS-1", "A", Decimal(1)), VariantDraft("TS-2", "B", Decimal("-0.01")))},
         ("variants", "1", "price")),
        ({"variants": (VariantDraft("TS-1", "A", Decimal("1.999")),)}, ("variants", "0", "price")),
        ({"variants": (VariantDraft("TS-1", "A", Decimal("NaN")),)}, ("variants", "0", "price")),
        ({"currency": "JPY", "variants": (VariantDraft("TS-1", "A", Decimal("100.5")),)},
         ("variants", "0", "price")),
    ],
)  # fmt: skip
def test_invalid_fields_are_reported_with_their_path(
    changes: dict[str, object], field: tuple[str, ...]
) -> None:
    assert errors_of(draft(**changes)) == {field: "INVALID_INPUT"}


def test_every_error_is_reported_at_once() -> None:
    found = errors_of(draft(handle="", title="", variants=(VariantDraft("", "", Decimal(-1)),)))
    assert set(found) == {("handle",), ("title",), ("variants", "0", "sku"), ("variants", "0", "title"),
                          ("variants", "0", "price")}  # fmt: skip


def test_normalization_and_currency_decimals() -> None:
    normalized = validate(
        draft(
            title="  Trail Shoe ",
            brand="  ",
            categories=("Shoes", "Shoes", " Running "),
            currency="kwd",
            variants=(VariantDraft(" TS-1 ", " Size 9 ", Decimal("1.5")),),
        )
    )
    assert (normalized.title, normalized.brand, normalized.categories) == (
        "Trail Shoe",
        None,
        ("Shoes", "Running"),
    )
    assert normalized.currency == "KWD"
    assert normalized.variants == (VariantDraft("TS-1", "Size 9", Decimal("1.500")),)
    assert validate(draft()).currency == "USD"
    assert (
        validate(draft(currency="JPY", variants=(VariantDraft("J-1", "A", Decimal("1500")),)))
        .variants[0]
        .price
        == 1500
    )


def test_decide_creates_then_appends_nothing_for_the_same_input() -> None:
    created = decide_upsert(None, validate(draft()), "p-1", NOW)
    assert isinstance(created, ProductCreated)
    state = created.product
    assert state.created_at == state.updated_at == NOW
    assert [v.status for v in state.variants] == ["active", "active"]
    same = validate(draft(variants=(VariantDraft("TS-1", "Size 9", Decimal("99.9")),
                                    VariantDraft("TS-2", "Size 10", Decimal("99.00")))))  # fmt: skip
    assert decide_upsert(state, same, "p-1", NOW + timedelta(minutes=1)) is None


def test_removed_variants_are_withdrawn_and_can_come_back() -> None:
    created = decide_upsert(None, validate(draft()), "p-1", NOW)
    assert created is not None
    later = NOW + timedelta(hours=1)
    updated = decide_upsert(created.product, validate(draft(variants=draft().variants[1:])), "p-1", later)
    assert isinstance(updated, ProductUpdated) and updated.changed == ("variants",)
    assert [(v.sku, v.status) for v in updated.product.variants] == [
        ("TS-2", "active"),
        ("TS-1", "withdrawn"),
    ]
    assert (updated.product.created_at, updated.product.updated_at) == (NOW, later)
    back = decide_upsert(updated.product, validate(draft()), "p-1", later)
    assert back is not None and [v.status for v in back.product.variants] == ["active", "active"]


def test_sku_owned_by_another_product_is_refused() -> None:
    valid = validate(draft())
    check_sku_owners(valid, {"TS-1": "p-1"}, "p-1")
    with pytest.raises(ValidationErrors) as caught:
        check_sku_owners(valid, {"TS-2": "p-9"}, "p-1")
    assert [e.field for e in caught.value.errors] == [["variants", "1", "sku"]]
