"""Catalog and search test helpers: upsert commands, ledger inspection, a search call counter."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from elasticsearch import AsyncElasticsearch
from sqlalchemy import text

from commands.messages.catalog import UpsertProduct, UpsertProductResult, VariantSpec
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.container import Container
from queries.products import ProductService

ADMIN = MessageMetadata(actor="admin:test")


def variant(sku: str, price: str = "10.00", title: str | None = None) -> VariantSpec:
    return VariantSpec(sku=sku, title=title or sku, price=Decimal(price))


def product(
    handle: str,
    title: str | None = None,
    variants: Sequence[VariantSpec] | None = None,
    **fields: Any,
) -> UpsertProduct:
    return UpsertProduct(
        handle=handle,
        title=title or handle.replace("-", " ").title(),
        variants=tuple(variants if variants is not None else [variant(f"{handle.upper()}-1")]),
        **fields,
    )


async def upsert(container: Container, command: UpsertProduct) -> UpsertProductResult:
    return await container.bus.dispatch(command, ADMIN)


def products(container: Container) -> ProductService:
    return container.services.products


async def ledger_types(container: Container) -> list[str]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(text("SELECT type FROM ledger_events ORDER BY position"))
        return [r.type for r in rows]


@dataclass
class SeededCatalog:
    container: Container
    commands: list[UpsertProduct]

    @property
    def service(self) -> ProductService:
        return products(self.container)


# Hand-made products for relevance checks, on top of the generated ones.
RELEVANCE_PRODUCTS = [
    product("quokka-explorer-lamp", "Quokka Explorer Lamp", [variant("QEL-1", "49.00")], brand="Lumen",
            categories=("Lighting",), description="A sturdy lamp for the campsite."),
    product("plain-desk-lamp", "Plain Desk Lamp", [variant("PDL-1", "19.00")], brand="Lumen",
            categories=("Lighting",), description="Bright enough to spot a quokka at night."),
    product("linen-lamp-shade", "Linen Lamp Shade", [variant("LLS-1", "15.00")], brand="Driftwood",
            categories=("Lighting",), description="Fits every Lumen lamp."),
]  # fmt: skip


class CallCounter:
    """Counts requests the search client sends (wraps the transport, not our code)."""

    def __init__(self, client: AsyncElasticsearch) -> None:
        self.paths: list[str] = []
        self.bodies: list[Any] = []
        # Set to hold every request, once counted, until it is set (a call kept in flight).
        self.hold: asyncio.Event | None = None
        transport = client.transport
        original = transport.perform_request

        async def counting(method: str, target: str, *args: Any, **kwargs: Any) -> Any:
            self.paths.append(f"{method} {target.split('?')[0]}")
            self.bodies.append(kwargs.get("body"))
            if self.hold is not None:
                await self.hold.wait()
            return await original(method, target, *args, **kwargs)

        self._transport = transport
        self._original = original
        transport.perform_request = counting  # type: ignore[method-assign]

    def close(self) -> None:
        self._transport.perform_request = self._original  # type: ignore[method-assign]
