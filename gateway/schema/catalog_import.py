"""``catalogImport``: an admin loads a batch of products, variants and stock in one request.

The same path as ``commerce-gateway catalog import`` (``gateway.catalog_import``): every
product through ``UpsertProduct``, stock through ``SetStock``; bad products are reported
by index in ``userErrors`` and the good ones are kept; importing the same batch again
changes nothing.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

import strawberry

from commands.messages.catalog import UpsertProduct, VariantSpec
from gateway.catalog_import import CatalogImporter, ImportItem, ImportReport
from gateway.edge.context import Info
from gateway.schema.catalog import wait_for_search
from gateway.schema.common import UserError, UserErrorCode
from gateway.schema.list_sizes import MAX_USER_ERRORS
from gateway.schema.scalars import Position
from queries.freshness import StaleRead

# Products per call; larger catalogs are sent in several batches (or with the CLI).
MAX_BATCH = 500


@strawberry.input
class CatalogImportVariantInput:
    sku: str
    title: str
    price: Decimal
    # Stock on hand to set; absent: left as it is.
    on_hand: int | None = None


@strawberry.input
class CatalogImportProductInput:
    handle: str
    title: str
    variants: list[CatalogImportVariantInput]
    description: str | None = None
    brand: str | None = None
    categories: list[str] | None = None
    currency_code: str | None = None


@strawberry.type
class CatalogImportPayload:
    created: int
    updated: int
    unchanged: int
    stock_set: int
    failed: int
    # The last ledger position the batch appended (reads may pass it as consistentWith).
    position: Position | None
    user_errors: list[UserError]


def _item(index: int, product: CatalogImportProductInput) -> ImportItem:
    command = UpsertProduct(
        handle=product.handle,
        title=product.title,
        variants=tuple(VariantSpec(v.sku, v.title, v.price) for v in product.variants),
        description=product.description,
        brand=product.brand,
        categories=None if product.categories is None else tuple(product.categories),
        currency_code=product.currency_code,
    )
    stock = {v.sku: v.on_hand for v in product.variants if v.on_hand is not None}
    return ImportItem(index, command, stock)


def _payload(report: ImportReport) -> CatalogImportPayload:
    errors = [
        UserError(
            field=["products", str(error.line), *(error.field or [])],
            message=error.message,
            code=UserErrorCode(error.code),
        )
        for error in report.errors[:MAX_USER_ERRORS]
    ]
    return CatalogImportPayload(
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        stock_set=report.stock_set,
        failed=report.failed,
        position=None if report.position is None else Position(report.position),
        user_errors=errors,
    )


async def resolve_catalog_import(
    info: Info, products: list[CatalogImportProductInput]
) -> CatalogImportPayload:
    info.context.principal.require("admin")
    if len(products) > MAX_BATCH:
        error = UserError(
            field=["products"],
            message=f"at most {MAX_BATCH} products per call",
            code=UserErrorCode.INVALID_INPUT,
        )
        return CatalogImportPayload(
            created=0,
            updated=0,
            unchanged=0,
            stock_set=0,
            failed=len(products),
            position=None,
            user_errors=[error],
        )
    container = info.context.container
    importer = CatalogImporter(container.bus, container.engine, info.context.metadata())
    report = await importer.run(_item(i, p) for i, p in enumerate(products))
    # Committed either way; a reader that needs it may pass `position` as consistentWith.
    with contextlib.suppress(StaleRead):
        await wait_for_search(info, report.position)
    return _payload(report)
