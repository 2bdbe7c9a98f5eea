"""The pricing read model is the newest configuration in the ledger: incrementally, replayed in
any order, and rebuilt."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from commands.messages.catalog import UpsertProduct, VariantSpec
from commands.messages.money import DefineDiscountCode, DefineShippingMethod, SetTaxPolicy, SetTaxRate
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import Checkpoint, read_batch
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.container import Container
from projections.pricing import PricingProjection

META = MessageMetadata(actor="test")
D = Decimal


async def _history(container: Container) -> None:
    bus = container.bus
    await bus.dispatch(DefineShippingMethod("std", "Standard", "EUR", D("4.90"), free_above=D("50")), META)
    await bus.dispatch(
        DefineShippingMethod("std", "Standard", "EUR", D("5.90"), country_prices=(("FR", D("6.90")),)), META
    )
    await bus.dispatch(SetTaxRate("DE", "standard", D("0.19")), META)
    await bus.dispatch(SetTaxRate("DE", "reduced", D("0.07")), META)
    await bus.dispatch(SetTaxRate("DE", "reduced", None), META)
    await bus.dispatch(SetTaxRate("FR", "standard", D("0.20")), META)
    await bus.dispatch(SetTaxPolicy("EUR", True, "PER_TOTAL"), META)
    await bus.dispatch(DefineDiscountCode("TEN", "PERCENTAGE", D("10"), usage_limit=5), META)
    await bus.dispatch(
        UpsertProduct(
            "book", "Book", (VariantSpec("BOOK", "Book", D("4.99"), "reduced"),), currency_code="EUR"
        ),
        META,
    )


async def _rows(container: Container, table: str = "pricing_view") -> dict[tuple[str, str], Any]:
    async with container.engine.connect() as conn:
        result = await conn.execute(text(f"SELECT kind, key, data, position FROM {table} ORDER BY kind, key"))
        return {(row.kind, row.key): (row.data, row.position) for row in result}


async def test_the_view_holds_the_newest_configuration(container: Container) -> None:
    await _history(container)
    await container.runner("pricing").catch_up()
    pricing = await container.services.pricing.for_cart("EUR", "DE", ["BOOK", "NONE"], "TEN")
    [method] = pricing.shipping_methods
    assert (method["price"], method["free_above"], method["country_prices"]) == (
        "5.90",
        None,
        [{"country_code": "FR", "price": "6.90"}],
    )
    # The removed reduced rate is gone; France's rates are not the destination's.
    assert [(r["category"], r["rate"]) for r in pricing.tax_rates] == [("standard", "0.19")]
    assert pricing.tax_policy is not None and pricing.tax_policy["rounding"] == "PER_TOTAL"
    assert pricing.discount_code is not None and pricing.discount_code["usage_limit"] == 5
    assert pricing.tax_categories == {"BOOK": "reduced"}
    nowhere = await container.services.pricing.for_cart("USD", None, [], None)
    assert (nowhere.tax_rates, nowhere.tax_policy, nowhere.discount_code) == ((), None, None)


async def test_replays_in_any_order_and_rebuilds_give_the_same_rows(container: Container) -> None:
    await _history(container)
    runner = container.runner("pricing")
    await runner.catch_up()
    live = await _rows(container)
    async with container.engine.connect() as conn:
        events = (await read_batch(conn, Checkpoint(), 1000)).events
    copy = PricingProjection(container.engine).rebuild_copy("shuffled")
    assert isinstance(copy, PricingProjection)
    await copy.setup()
    shuffled = list(events)
    random.Random(7).shuffle(shuffled)
    for chunk in (shuffled[:5], shuffled[5:], shuffled):
        async with container.engine.begin() as conn:
            await copy.apply(chunk, await asyncpg_of(conn))
    assert await _rows(container, copy.table) == live

    await container.rebuilder.run(runner)
    assert await _rows(container) == live
