"""Catalog command handlers: the catalog tables and the product stream, in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from commands.domain import catalog
from commands.domain.currencies import minor_units
from commands.errors import InvalidInput, ValidationErrors
from commands.events.catalog import STREAM_TYPE, ProductState, ProductVariantState, product_stream_id
from commands.messages.catalog import UpsertProduct, UpsertProductResult
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import UnitOfWork


async def upsert_product(command: UpsertProduct, uow: UnitOfWork) -> UpsertProductResult:
    draft = catalog.validate(
        catalog.ProductDraft(
            handle=command.handle,
            title=command.title,
            variants=tuple(
                catalog.VariantDraft(v.sku, v.title, v.price, v.tax_category) for v in command.variants
            ),
            description=command.description,
            brand=command.brand,
            categories=command.categories,
            currency=command.currency_code,
        )
    )
    now = datetime.now(UTC)
    conn = uow.conn
    product_id, created = await _lock_or_insert(conn, draft, now)
    current = None if created else await _load(conn, product_id)
    catalog.check_sku_owners(draft, await _sku_owners(conn, [v.sku for v in draft.variants]), product_id)
    event = catalog.decide_upsert(current, draft, product_id, now)
    stream_id = product_stream_id(product_id)
    if event is None:
        return UpsertProductResult(product_id, None, await _last_position(conn, stream_id), False)
    await _save(conn, event.product, product_row_current=created)
    await uow.append(STREAM_TYPE, stream_id, [event])
    return UpsertProductResult(product_id, uow.last_position, uow.last_position, created)


async def _lock_or_insert(
    conn: AsyncConnection, draft: catalog.ProductDraft, now: datetime
) -> tuple[str, bool]:
    """Lock the product row with this handle, inserting it first when there is none.

    Concurrent upserts of one handle serialize on the row lock; a concurrent
    first insert makes ON CONFLICT wait for the other transaction, after which
    the row is there to lock.
    """
    driver = await asyncpg_of(conn)
    while True:
        existing = await driver.fetchval(_LOCK_PRODUCT, draft.handle)
        if existing is not None:
            return str(existing), False
        product_id = uuid.uuid4()
        inserted = await driver.fetchval(
            _INSERT_PRODUCT,
            product_id,
            draft.handle,
            draft.title,
            draft.description or "",
            draft.brand,
            list(draft.categories or ()),
            draft.currency,
            now,
        )
        if inserted is not None:
            return str(product_id), True


_LOCK_PRODUCT = "SELECT id FROM catalog_products WHERE handle = $1 FOR UPDATE"
_INSERT_PRODUCT = (
    "INSERT INTO catalog_products "
    "(id, handle, title, description, brand, categories, currency, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) "
    "ON CONFLICT (handle) DO NOTHING RETURNING id"
)


async def _load(conn: AsyncConnection, product_id: str) -> ProductState:
    product = (
        await conn.execute(
            text("SELECT * FROM catalog_products WHERE id = CAST(:id AS uuid)"), {"id": product_id}
        )
    ).one()
    currency = product.currency.strip()
    exponent = Decimal(1).scaleb(-(minor_units(currency) or 0))
    rows = await conn.execute(
        text(
            "SELECT sku, title, price, status, tax_category FROM catalog_variants "
            "WHERE product_id = CAST(:id AS uuid) ORDER BY sort_order, sku"
        ),
        {"id": product_id},
    )
    variants = tuple(
        ProductVariantState(r.sku, r.title, r.price.quantize(exponent), r.status, r.tax_category)
        for r in rows
    )
    return ProductState(
        product_id=product_id,
        handle=product.handle,
        title=product.title,
        description=product.description,
        brand=product.brand,
        categories=tuple(product.categories),
        currency=currency,
        variants=variants,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


async def _sku_owners(conn: AsyncConnection, skus: Sequence[str]) -> dict[str, str]:
    driver = await asyncpg_of(conn)
    rows = await driver.fetch(
        "SELECT sku, product_id FROM catalog_variants WHERE sku = ANY($1::varchar[])", list(skus)
    )
    return {r["sku"]: str(r["product_id"]) for r in rows}


_UPSERT_VARIANTS = text(
    """
    INSERT INTO catalog_variants
        (sku, product_id, title, price, currency, status, sort_order, created_at, updated_at, tax_category)
    SELECT u.sku, CAST(:pid AS uuid), u.title, u.price, :cur, u.status, u.sort_order, :now, :now,
           u.tax_category
    FROM unnest(CAST(:skus AS varchar[]), CAST(:titles AS text[]), CAST(:prices AS numeric[]),
                CAST(:statuses AS varchar[]), CAST(:orders AS int[]), CAST(:taxes AS varchar[]))
         AS u(sku, title, price, status, sort_order, tax_category)
    -- One lock order for SKU rows, so two products claiming overlapping SKUs cannot deadlock.
    ORDER BY u.sku
    ON CONFLICT (sku) DO UPDATE SET
        title = EXCLUDED.title, price = EXCLUDED.price, currency = EXCLUDED.currency,
        status = EXCLUDED.status, sort_order = EXCLUDED.sort_order, tax_category = EXCLUDED.tax_category,
        updated_at = CASE
            WHEN (catalog_variants.title, catalog_variants.price, catalog_variants.currency,
                  catalog_variants.status, catalog_variants.sort_order, catalog_variants.tax_category)
                 IS DISTINCT FROM
                 (EXCLUDED.title, EXCLUDED.price, EXCLUDED.currency, EXCLUDED.status, EXCLUDED.sort_order,
                  EXCLUDED.tax_category)
            THEN EXCLUDED.updated_at ELSE catalog_variants.updated_at END
    WHERE catalog_variants.product_id = EXCLUDED.product_id
    RETURNING sku
    """
)


async def _save(conn: AsyncConnection, state: ProductState, *, product_row_current: bool) -> None:
    if not product_row_current:
        await _update_product_row(conn, state)
    await _save_variants(conn, state)


async def _update_product_row(conn: AsyncConnection, state: ProductState) -> None:
    await conn.execute(
        text(
            "UPDATE catalog_products SET title = :t, description = :d, brand = :b, "
            "categories = CAST(:c AS text[]), currency = :cur, updated_at = :now "
            "WHERE id = CAST(:id AS uuid)"
        ),
        {
            "id": state.product_id,
            "t": state.title,
            "d": state.description,
            "b": state.brand,
            "c": list(state.categories),
            "cur": state.currency,
            "now": state.updated_at,
        },
    )


async def _save_variants(conn: AsyncConnection, state: ProductState) -> None:
    written = await conn.execute(
        _UPSERT_VARIANTS,
        {
            "pid": state.product_id,
            "cur": state.currency,
            "now": state.updated_at,
            "skus": [v.sku for v in state.variants],
            "titles": [v.title for v in state.variants],
            "prices": [v.price for v in state.variants],
            "statuses": [v.status for v in state.variants],
            "orders": list(range(len(state.variants))),
            "taxes": [v.tax_category for v in state.variants],
        },
    )
    # A SKU another product claimed after our ownership check (its insert won the race).
    taken = {v.sku for v in state.variants} - {r.sku for r in written}
    if taken:
        raise ValidationErrors(
            [
                InvalidInput(f"sku {v.sku} belongs to another product", ["variants", str(i), "sku"])
                for i, v in enumerate(state.active_variants)
                if v.sku in taken
            ]
            or [InvalidInput("a withdrawn sku of this product was claimed concurrently", ["variants"])]
        )


async def _last_position(conn: AsyncConnection, stream_id: str) -> int | None:
    result = await conn.execute(
        text("SELECT max(position) FROM ledger_events WHERE stream_id = :s"), {"s": stream_id}
    )
    value = result.scalar_one_or_none()
    return None if value is None else int(value)
