"""The demo catalog: seeded on first start, finished when a first start stopped while loading it,
and never added to a catalog of the store's own."""

from __future__ import annotations

from decimal import Decimal

from commands.messages.catalog import UpsertProduct, VariantSpec
from gateway.bootstrap.container import Container
from gateway.bootstrap.seed import catalog_handles, demo_catalog, seed_catalog, seed_if_empty

DEMO = 30


def _demo_handles() -> set[str]:
    return {command.handle for command in demo_catalog(DEMO)}


async def test_an_empty_catalog_is_seeded_once(container: Container) -> None:
    assert await seed_if_empty(container, count=DEMO)
    assert await catalog_handles(container) == _demo_handles()
    assert not await seed_if_empty(container, count=DEMO)


async def test_a_first_start_stopped_while_loading_is_finished_by_the_next(container: Container) -> None:
    await seed_catalog(container, demo_catalog(DEMO)[:12])  # what the interrupted start got to
    assert len(await catalog_handles(container)) == 12
    assert await seed_if_empty(container, count=DEMO)
    assert await catalog_handles(container) == _demo_handles()
    assert not await seed_if_empty(container, count=DEMO)


async def test_a_catalog_of_the_stores_own_is_left_alone(container: Container) -> None:
    await seed_catalog(container, demo_catalog(DEMO)[:5])
    own = UpsertProduct(
        handle="our-own-tee",
        title="Our own tee",
        variants=(VariantSpec(sku="OWN-TEE", title="One size", price=Decimal("12.00")),),
    )
    await seed_catalog(container, [own])
    before = await catalog_handles(container)
    assert not await seed_if_empty(container, count=DEMO)
    assert await catalog_handles(container) == before and "our-own-tee" in before
