"""Catalog command handlers: the catalog tables and the product stream, in one transaction.

``upsert_product`` runs one product (``productUpsert``) or, in a bulk load, a batch of them
set-based (``commands.batching``); both paths share the rules and the statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from commands.batching import BatchedHandler, BatchFallback
from commands.domain import catalog
from commands.domain.currencies import minor_units
from commands.errors import DomainError, InvalidInput, ValidationErrors
from commands.events.catalog import (
    STREAM_TYPE,
    ProductCreated,
    ProductState,
    ProductUpdated,
    ProductVariantState,
    product_stream_id,
)
from commands.messages.catalog import UpsertProduct, UpsertProductResult
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import UnitOfWork


def _draft(command: UpsertProduct) -> catalog.ProductDraft:
    """The command's product, validated and normalized (ValidationErrors otherwise)."""
    return catalog.validate(
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


async def _upsert_one(command: UpsertProduct, uow: UnitOfWork) -> UpsertProductResult:
    draft = _draft(command)
    now = datetime.now(UTC)
    conn = uow.conn
    product_id, created = await _lock_or_insert(conn, draft, now)
    current = None if created else await _load(conn, product_id)
    owners = await _sku_owners_of(await asyncpg_of(conn), [v.sku for v in draft.variants])
    catalog.check_sku_owners(draft, owners, product_id)
    event = catalog.decide_upsert(current, draft, product_id, now)
    stream_id = product_stream_id(product_id)
    if event is None:
        return UpsertProductResult(product_id, None, await _last_position(conn, stream_id), False)
    await _save(conn, event.product, product_row_current=created)
    await uow.append(STREAM_TYPE, stream_id, [event])
    return UpsertProductResult(product_id, uow.last_position, uow.last_position, created)


async def _upsert_many(
    commands: Sequence[UpsertProduct], uow: UnitOfWork
) -> list[UpsertProductResult | DomainError]:
    """``_upsert_one`` for many products of distinct handles and SKUs, set-based: the same
    decisions from the same rows, read and written with one statement per table and one
    ledger append for the batch."""
    outcomes: list[UpsertProductResult | DomainError | None] = [None] * len(commands)
    drafts: dict[int, catalog.ProductDraft] = {}
    for i, command in enumerate(commands):
        try:
            drafts[i] = _draft(command)
        except DomainError as refused:
            outcomes[i] = refused
    handles = [d.handle for d in drafts.values()]
    skus = [v.sku for d in drafts.values() for v in d.variants]
    if len(set(handles)) < len(handles) or len(set(skus)) < len(skus):
        # A later command would decide on what an earlier one wrote: one by one, then.
        raise BatchFallback("a handle or SKU appears twice in the batch")
    driver = await asyncpg_of(uow.conn)
    now = datetime.now(UTC)
    current = await _lock_products(driver, handles)
    owners = await _sku_owners_of(driver, skus)
    changes: list[tuple[int, ProductCreated | ProductUpdated]] = []
    unchanged: dict[int, str] = {}
    for i, draft in drafts.items():
        state = current.get(draft.handle)
        product_id = state.product_id if state is not None else str(uuid.uuid4())
        try:
            catalog.check_sku_owners(draft, owners, product_id)
        except DomainError as refused:
            outcomes[i] = refused
            continue
        event = catalog.decide_upsert(state, draft, product_id, now)
        if event is None:
            unchanged[i] = product_id
        else:
            changes.append((i, event))
    created = [e.product for _, e in changes if isinstance(e, ProductCreated)]
    if len(await _insert_products(driver, created)) < len(created):
        raise BatchFallback("a product of the batch was created concurrently")
    await _update_product_rows(driver, [e.product for _, e in changes if isinstance(e, ProductUpdated)])
    states = [e.product for _, e in changes]
    if len(await _save_variants(driver, states)) < sum(len(s.variants) for s in states):
        raise BatchFallback("a SKU of the batch was claimed concurrently")
    last = await _last_positions(driver, [product_stream_id(p) for p in unchanged.values()])
    recorded = await uow.append_to_streams(
        [(STREAM_TYPE, product_stream_id(e.product.product_id), e) for _, e in changes]
    )
    for (i, event), appended in zip(changes, recorded, strict=True):
        created_now = isinstance(event, ProductCreated)
        outcomes[i] = UpsertProductResult(
            event.product.product_id, appended.position, appended.position, created_now
        )
    for i, product_id in unchanged.items():
        outcomes[i] = UpsertProductResult(product_id, None, last.get(product_stream_id(product_id)), False)
    # Every command was decided above: a gap would shift the answers against the commands.
    assert None not in outcomes
    return cast(list[UpsertProductResult | DomainError], outcomes)


upsert_product = BatchedHandler(_upsert_one, _upsert_many)


async def _lock_products(driver: Any, handles: Sequence[str]) -> dict[str, ProductState]:
    """The products with these handles, row locked (in handle order), by handle."""
    if not handles:
        return {}
    products = await driver.fetch(
        f"{_SELECT_PRODUCTS} WHERE handle = ANY($1::varchar[]) ORDER BY handle FOR UPDATE", list(handles)
    )
    if not products:
        return {}
    variants: dict[str, list[asyncpg.Record]] = {}
    for row in await driver.fetch(
        f"{_SELECT_VARIANTS} WHERE product_id = ANY($1::uuid[]) {_VARIANT_ORDER}",
        [p["id"] for p in products],
    ):
        variants.setdefault(str(row["product_id"]), []).append(row)
    return {p["handle"]: _state_of(p, variants.get(str(p["id"]), [])) for p in products}


async def _sku_owners_of(driver: Any, skus: Sequence[str]) -> dict[str, str]:
    if not skus:
        return {}
    rows = await driver.fetch(
        "SELECT sku, product_id FROM catalog_variants WHERE sku = ANY($1::varchar[])", list(skus)
    )
    return {r["sku"]: str(r["product_id"]) for r in rows}


async def _insert_products(driver: Any, states: Sequence[ProductState]) -> list[str]:
    """Insert these new products' rows; the handles inserted (not one another transaction took)."""
    if not states:
        return []
    rows = await driver.fetch(_INSERT_PRODUCTS, *_product_columns(states), [s.handle for s in states])
    return [r["handle"] for r in rows]


def _product_columns(states: Sequence[ProductState]) -> list[list[Any]]:
    """$1-$7 of the product statements: id, title, description, brand, categories, currency, at."""
    return [
        [s.product_id for s in states],
        [s.title for s in states],
        [s.description for s in states],
        [s.brand for s in states],
        # Text arrays of one dimension cannot nest: each product's categories travel as a literal.
        [_text_array(s.categories) for s in states],
        [s.currency for s in states],
        [s.updated_at for s in states],
    ]


async def _last_positions(driver: Any, stream_ids: Sequence[str]) -> dict[str, int]:
    if not stream_ids:
        return {}
    rows = await driver.fetch(
        "SELECT stream_id, max(position) AS position FROM ledger_events "
        "WHERE stream_id = ANY($1::varchar[]) GROUP BY stream_id",
        list(stream_ids),
    )
    return {r["stream_id"]: int(r["position"]) for r in rows}


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
    driver = await asyncpg_of(conn)
    product = await driver.fetchrow(f"{_SELECT_PRODUCTS} WHERE id = $1::uuid", product_id)
    rows = await driver.fetch(f"{_SELECT_VARIANTS} WHERE product_id = $1::uuid {_VARIANT_ORDER}", product_id)
    return _state_of(product, rows)


_SELECT_PRODUCTS = (
    "SELECT id, handle, title, description, brand, categories, currency, created_at, updated_at "
    "FROM catalog_products"
)
_SELECT_VARIANTS = "SELECT product_id, sku, title, price, status, tax_category FROM catalog_variants"
_VARIANT_ORDER = "ORDER BY sort_order, sku"


def _state_of(product: asyncpg.Record, variant_rows: Sequence[asyncpg.Record]) -> ProductState:
    """A product's state from its ``catalog_products`` row and its ``catalog_variants`` rows
    (in sort order)."""
    currency = product["currency"].strip()
    exponent = Decimal(1).scaleb(-(minor_units(currency) or 0))
    variants = tuple(
        ProductVariantState(
            r["sku"], r["title"], r["price"].quantize(exponent), r["status"], r["tax_category"]
        )
        for r in variant_rows
    )
    return ProductState(
        product_id=str(product["id"]),
        handle=product["handle"],
        title=product["title"],
        description=product["description"],
        brand=product["brand"],
        categories=tuple(product["categories"]),
        currency=currency,
        variants=variants,
        created_at=product["created_at"],
        updated_at=product["updated_at"],
    )


# Statements over arrays, one row per product or variant: the same statement writes one
# product (productUpsert) or a whole batch (bulk import).
_UPSERT_VARIANTS = """
    INSERT INTO catalog_variants
        (sku, product_id, title, price, currency, status, sort_order, created_at, updated_at, tax_category)
    SELECT u.sku, u.product_id, u.title, u.price, u.currency, u.status, u.sort_order, u.at, u.at,
           u.tax_category
    FROM unnest($1::varchar[], $2::uuid[], $3::text[], $4::numeric[], $5::varchar[], $6::varchar[],
                $7::int[], $8::timestamptz[], $9::varchar[])
         AS u(sku, product_id, title, price, currency, status, sort_order, at, tax_category)
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
_UPDATE_PRODUCTS = """
    UPDATE catalog_products AS p SET title = u.title, description = u.description, brand = u.brand,
        categories = u.categories::text[], currency = u.currency, updated_at = u.at
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::varchar[],
                $7::timestamptz[])
         AS u(id, title, description, brand, categories, currency, at)
    WHERE p.id = u.id
"""
_INSERT_PRODUCTS = """
    INSERT INTO catalog_products
        (id, handle, title, description, brand, categories, currency, created_at, updated_at)
    SELECT u.id, u.handle, u.title, u.description, u.brand, u.categories::text[], u.currency, u.at, u.at
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::varchar[],
                $7::timestamptz[], $8::varchar[])
         AS u(id, title, description, brand, categories, currency, at, handle)
    ORDER BY u.handle
    ON CONFLICT (handle) DO NOTHING
    RETURNING handle
"""


async def _save(conn: AsyncConnection, state: ProductState, *, product_row_current: bool) -> None:
    driver = await asyncpg_of(conn)
    if not product_row_current:
        await _update_product_rows(driver, [state])
    # A SKU another product claimed after our ownership check (its insert won the race).
    taken = {v.sku for v in state.variants} - await _save_variants(driver, [state])
    if taken:
        raise ValidationErrors(
            [
                InvalidInput(f"sku {v.sku} belongs to another product", ["variants", str(i), "sku"])
                for i, v in enumerate(state.active_variants)
                if v.sku in taken
            ]
            or [InvalidInput("a withdrawn sku of this product was claimed concurrently", ["variants"])]
        )


async def _update_product_rows(driver: Any, states: Sequence[ProductState]) -> None:
    if not states:
        return
    await driver.execute(_UPDATE_PRODUCTS, *_product_columns(states))


async def _save_variants(driver: Any, states: Sequence[ProductState]) -> set[str]:
    """Write the variants of ``states``; the SKUs written (a SKU of another product is not)."""
    rows = [(s, order, v) for s in states for order, v in enumerate(s.variants)]
    if not rows:
        return set()
    written = await driver.fetch(
        _UPSERT_VARIANTS,
        [v.sku for _, _, v in rows],
        [s.product_id for s, _, _ in rows],
        [v.title for _, _, v in rows],
        [v.price for _, _, v in rows],
        [s.currency for s, _, _ in rows],
        [v.status for _, _, v in rows],
        [order for _, order, _ in rows],
        [s.updated_at for s, _, _ in rows],
        [v.tax_category for _, _, v in rows],
    )
    return {r["sku"] for r in written}


def _text_array(values: Sequence[str]) -> str:
    """A PostgreSQL text[] literal of ``values``."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


async def _last_position(conn: AsyncConnection, stream_id: str) -> int | None:
    driver = await asyncpg_of(conn)
    value = await driver.fetchval("SELECT max(position) FROM ledger_events WHERE stream_id = $1", stream_id)
    return None if value is None else int(value)
