"""Fixtures of the integration tier (real stores, no HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.bootstrap.container import Container, build_container
from gateway.bootstrap.seed import demo_catalog, seed_catalog
from gateway.bootstrap.settings import Settings
from gateway.bootstrap.wiring import wire
from tests.support.catalog import RELEVANCE_PRODUCTS, SeededCatalog
from tests.support.inventory import seed_variants, set_stock
from tests.support.stores import FAST_RUNNERS, isolated_settings, new_tag


@pytest.fixture(scope="module")
async def seeded(base_settings: Settings) -> AsyncIterator[SeededCatalog]:
    """300 generated products plus RELEVANCE_PRODUCTS, indexed; shared read-only by a module."""
    async with isolated_settings(base_settings, new_tag("cat")) as settings:
        container = await build_container(settings)
        wire(container, FAST_RUNNERS)
        commands = demo_catalog(300, seed=7) + RELEVANCE_PRODUCTS
        try:
            await seed_catalog(container, commands)
            await container.runner("search").catch_up()
            yield SeededCatalog(container, commands)
        finally:
            await container.close()


@pytest.fixture
async def stocked(container: Container) -> Container:
    """Catalog SKUs INV-A/B/C/UNTRACKED; A has 10 on hand, B has 5, C has 0, UNTRACKED no row."""
    await seed_variants(container)
    for sku, on_hand in (("INV-A", 10), ("INV-B", 5), ("INV-C", 0)):
        await set_stock(container, sku, on_hand)
    return container
