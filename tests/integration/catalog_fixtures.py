"""Helpers for catalog and search tests: commands, seeding, a shared seeded catalog."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from commands.messages.catalog import UpsertProduct, UpsertProductResult, VariantSpec
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.container import Container, build_container
from gateway.bootstrap.seed import demo_catalog, seed_catalog
from gateway.bootstrap.settings import Settings
from gateway.bootstrap.wiring import wire
from queries.products import ProductService
from tests.conftest import FAST_RUNNERS, TEMPLATE_DB, _with_database

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
    return container.get(ProductService)


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


@pytest.fixture(scope="module")
async def seeded(base_settings: Settings) -> AsyncIterator[SeededCatalog]:
    """300 generated products plus RELEVANCE_PRODUCTS, indexed; shared read-only by a module."""
    tag = f"cat{os.getpid()}_{uuid.uuid4().hex[:8]}"
    assert base_settings.database_url is not None
    admin = create_async_engine(base_settings.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {tag} TEMPLATE {TEMPLATE_DB}"))
    settings = base_settings.with_overrides(
        database_url=_with_database(base_settings.database_url, tag),
        index_prefix=f"{tag}_",
        mongodb_database=tag,
        redis_prefix=f"{tag}:",
        migrate_on_start=False,
    )
    container = await build_container(settings)
    wire(container, FAST_RUNNERS)
    commands = demo_catalog(300, seed=7) + RELEVANCE_PRODUCTS
    try:
        await seed_catalog(container, commands)
        await container.runner("search").catch_up()
        yield SeededCatalog(container, commands)
    finally:
        await container.close()
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {tag} WITH (FORCE)"))
        await admin.dispose()


class CallCounter:
    """Counts requests the search client sends (wraps the transport, not our code)."""

    def __init__(self, client: AsyncElasticsearch) -> None:
        self.paths: list[str] = []
        transport = client.transport
        original = transport.perform_request

        async def counting(method: str, target: str, *args: Any, **kwargs: Any) -> Any:
            self.paths.append(f"{method} {target.split('?')[0]}")
            return await original(method, target, *args, **kwargs)

        self._transport = transport
        self._original = original
        transport.perform_request = counting  # type: ignore[method-assign]

    def close(self) -> None:
        self._transport.perform_request = self._original  # type: ignore[method-assign]
