"""Bulk catalog import: products, variants and stock through the same command handlers as
``productUpsert`` and ``inventorySet`` (``UpsertProduct``, ``SetStock`` on the bus).

One product per item (a JSON Lines file for the CLI, a list for ``catalogImport``); the
format is in docs/catalog.md. Items are independent: a bad one is reported with its
line number and field, the good ones are kept. Running an import twice gives the same
catalog and appends nothing the second time (an unchanged product appends no event, and
stock is set only where it differs), so an interrupted import is resumed by running it
again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.bus import CommandBus
from commands.errors import DomainError, ValidationErrors
from commands.messages.catalog import UpsertProduct, VariantSpec
from commands.messages.inventory import SetStock
from commands.store.unit_of_work import MessageMetadata

# Products (or SKUs' stock) per transaction. The handlers decide a batch set-based
# (commands.batching): a few statements per batch whatever its size, so a batch, not a
# product, is what a bulk load pays for.
BATCH = 100
# Batches in flight at once.
CONCURRENCY = 4
# Items per chunk: stock levels are read once per chunk, after its products are committed.
CHUNK = 1000
_PRODUCT_FIELDS = frozenset(
    {"handle", "title", "description", "brand", "categories", "currencyCode", "variants"}
)
_VARIANT_FIELDS = frozenset({"sku", "title", "price", "onHand"})


@dataclass(frozen=True)
class ImportItem:
    """One product to import: the upsert, and the stock to set per SKU (absent: left as it is)."""

    line: int
    command: UpsertProduct
    stock: Mapping[str, int]


@dataclass(frozen=True)
class ItemError:
    line: int
    message: str
    # Path inside the item, e.g. ["variants", "2", "price"]; None for the whole item.
    field: list[str] | None = None
    code: str = "INVALID_INPUT"

    def describe(self) -> str:
        where = f" ({'.'.join(self.field)})" if self.field else ""
        return f"line {self.line}{where}: {self.message}"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stock_set: int = 0
    errors: list[ItemError] = field(default_factory=list)
    # The last ledger position this import appended (None: it appended nothing).
    position: int | None = None

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def failed(self) -> int:
        return len({error.line for error in self.errors})

    def _appended(self, position: int | None) -> None:
        if position is not None and (self.position is None or position > self.position):
            self.position = position


class _BadItem(ValueError):
    def __init__(self, message: str, *path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = list(path) or None


def parse_item(line: int, raw: object) -> ImportItem:
    """One decoded JSON value as an item; raises ``_BadItem`` naming the field at fault.

    Only the shape is checked here; the rules (lengths, prices, currencies, SKU owners)
    are the command handlers', as for ``productUpsert``.
    """
    if not isinstance(raw, dict):
        raise _BadItem("each line must be a JSON object")
    if unknown := sorted(set(raw) - _PRODUCT_FIELDS):
        raise _BadItem(f"unknown field {unknown[0]!r}", unknown[0])
    handle, title = _text(raw, "handle"), _text(raw, "title")
    variants = raw.get("variants")
    if not isinstance(variants, list):
        raise _BadItem("variants must be a list", "variants")
    specs: list[VariantSpec] = []
    stock: dict[str, int] = {}
    for i, variant in enumerate(variants):
        at = ("variants", str(i))
        if not isinstance(variant, dict):
            raise _BadItem("each variant must be an object", *at)
        if unknown := sorted(set(variant) - _VARIANT_FIELDS):
            raise _BadItem(f"unknown field {unknown[0]!r}", *at, unknown[0])
        sku, variant_title = _text(variant, "sku", *at), _text(variant, "title", *at)
        specs.append(VariantSpec(sku, variant_title, _price(variant.get("price"), *at, "price")))
        on_hand = variant.get("onHand")
        if on_hand is not None:
            if not isinstance(on_hand, int) or isinstance(on_hand, bool) or on_hand < 0:
                raise _BadItem("onHand must be a non-negative integer", *at, "onHand")
            stock[sku] = on_hand
    categories = raw.get("categories")
    if categories is not None and not (
        isinstance(categories, list) and all(isinstance(c, str) for c in categories)
    ):
        raise _BadItem("categories must be a list of strings", "categories")
    command = UpsertProduct(
        handle=handle,
        title=title,
        variants=tuple(specs),
        description=_optional_text(raw, "description"),
        brand=_optional_text(raw, "brand"),
        categories=None if categories is None else tuple(categories),
        currency_code=_optional_text(raw, "currencyCode"),
    )
    return ImportItem(line, command, stock)


def _text(data: Mapping[str, Any], name: str, *at: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise _BadItem(f"{name} must be a string", *at, name)
    return value


def _optional_text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise _BadItem(f"{name} must be a string", name)
    return value


def _price(value: object, *path: str) -> Decimal:
    # A string keeps the exact decimal; a JSON number is accepted as written.
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            price = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if price.is_finite():
                return price
    elif isinstance(value, float):
        return Decimal(repr(value))
    raise _BadItem('price must be a decimal string such as "12.50"', *path)


def parse_lines(lines: Iterable[str], first_line: int = 1) -> Iterable[ImportItem | ItemError]:
    """JSON Lines: one item or one error per non-blank line, numbered from ``first_line``."""
    for number, raw in enumerate(lines, start=first_line):
        if not raw.strip():
            continue
        try:
            yield parse_item(number, json.loads(raw))
        except json.JSONDecodeError as exc:
            yield ItemError(number, f"not valid JSON: {exc.msg} at column {exc.colno}")
        except _BadItem as exc:
            yield ItemError(number, exc.message, exc.path)


class CatalogImporter:
    """Runs items through the bus in batches of ``BATCH``, ``concurrency`` batches at a time."""

    def __init__(
        self,
        bus: CommandBus,
        engine: AsyncEngine,
        metadata: MessageMetadata,
        *,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._bus = bus
        self._engine = engine
        self._metadata = metadata
        self._gate = asyncio.Semaphore(concurrency)

    async def run(self, items: Iterable[ImportItem | ItemError]) -> ImportReport:
        report = ImportReport()
        chunk: list[ImportItem] = []
        for item in items:
            if isinstance(item, ItemError):
                report.errors.append(item)
                continue
            chunk.append(item)
            if len(chunk) >= CHUNK:
                await self._chunk(chunk, report)
                chunk = []
        if chunk:
            await self._chunk(chunk, report)
        report.errors.sort(key=lambda e: e.line)
        return report

    async def _chunk(self, items: Sequence[ImportItem], report: ImportReport) -> None:
        kept: list[ImportItem] = []
        for wave in _waves(items):
            # One transaction per batch of products; a bad line is refused alone.
            batches = [wave[i : i + BATCH] for i in range(0, len(wave), BATCH)]
            accepted = await asyncio.gather(*(self._upsert(batch, report) for batch in batches))
            kept.extend(item for items_kept in accepted for item in items_kept)
        wanted = {sku: on_hand for item in kept for sku, on_hand in item.stock.items()}
        current = await self._on_hand(list(wanted))
        # A SKU never stocked holds zero (the SetStock handler starts it there).
        changes = [(sku, on_hand) for sku, on_hand in wanted.items() if current.get(sku, 0) != on_hand]
        line_of = {sku: item.line for item in kept for sku in item.stock}
        batches_of_stock = [changes[i : i + BATCH] for i in range(0, len(changes), BATCH)]
        await asyncio.gather(*(self._set_stock(batch, line_of, report) for batch in batches_of_stock))

    async def _upsert(self, batch: Sequence[ImportItem], report: ImportReport) -> list[ImportItem]:
        """Upsert a batch of products; the items the handlers accepted, in batch order."""
        async with self._gate:
            results = await self._bus.dispatch_batch([item.command for item in batch], self._metadata)
        accepted: list[ImportItem] = []
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, DomainError):
                report.errors.extend(_errors(item.line, result))
                continue
            accepted.append(item)
            if result.position is None:
                report.unchanged += 1
            elif result.created:
                report.created += 1
            else:
                report.updated += 1
            report._appended(result.position)
        return accepted

    async def _set_stock(
        self, batch: Sequence[tuple[str, int]], line_of: Mapping[str, int], report: ImportReport
    ) -> None:
        async with self._gate:
            results = await self._bus.dispatch_batch(
                [SetStock(sku, on_hand) for sku, on_hand in batch], self._metadata
            )
        for (sku, _), result in zip(batch, results, strict=True):
            if isinstance(result, DomainError):
                report.errors.extend(_errors(line_of[sku], result, prefix=["stock", sku]))
                continue
            report.stock_set += 1
            report._appended(result.position)

    async def _on_hand(self, skus: list[str]) -> dict[str, int]:
        """Current on-hand stock of these SKUs, from the inventory the SetStock handler keeps."""
        if not skus:
            return {}
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT sku, sum(on_hand) AS on_hand FROM inventory_items "
                    "WHERE sku = ANY(CAST(:skus AS varchar[])) GROUP BY sku"
                ),
                {"skus": skus},
            )
            return {row.sku: row.on_hand for row in rows}


def _waves(items: Sequence[ImportItem]) -> list[list[ImportItem]]:
    """Items in file order, cut where one shares a handle or SKU with an earlier item of its
    wave: items of one wave run concurrently, so a later line still wins over an earlier one."""
    waves: list[list[ImportItem]] = [[]]
    taken: set[str] = set()
    for item in items:
        keys = {f"handle:{item.command.handle}", *(f"sku:{v.sku}" for v in item.command.variants)}
        if keys & taken:
            waves.append([])
            taken = set()
        waves[-1].append(item)
        taken |= keys
    return waves


def _errors(line: int, error: DomainError, prefix: list[str] | None = None) -> list[ItemError]:
    errors = error.errors if isinstance(error, ValidationErrors) else [error]
    found = []
    for e in errors:
        path = None if e.field is None and prefix is None else [*(prefix or []), *(e.field or [])]
        found.append(ItemError(line, e.message, path, e.code))
    return found
