"""productUpsert on the write side: catalog tables and the product stream, in one transaction."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import text

from commands.errors import ValidationErrors
from commands.events.catalog import ProductUpdated
from commands.store.ledger.reader import load_stream
from gateway.bootstrap.container import Container
from tests.support.catalog import ledger_types, product, upsert, variant


async def _rows(container: Container) -> tuple[list[tuple[str, str]], list[tuple[str, str, Decimal]]]:
    async with container.engine.connect() as conn:
        products = [
            (r.handle, r.title)
            for r in await conn.execute(text("SELECT handle, title FROM catalog_products ORDER BY handle"))
        ]
        variants = [
            (r.sku, r.status, r.price)
            for r in await conn.execute(text("SELECT sku, status, price FROM catalog_variants ORDER BY sku"))
        ]
    return products, variants


async def test_one_event_per_effective_change_and_withdrawn_variants(container: Container) -> None:
    first = product("trail-shoe", "Trail Shoe", [variant("TS-1", "99.90"), variant("TS-2", "109.90")])
    created = await upsert(container, first)
    assert created.created and created.position is not None

    again = await upsert(
        container, product("trail-shoe", "Trail Shoe", [variant("TS-1", "99.9"), variant("TS-2", "109.90")])
    )
    assert again.position is None and again.read_position == created.position
    assert again.product_id == created.product_id

    changed = await upsert(container, product("trail-shoe", "Trail Shoe", [variant("TS-2", "119.90")]))
    assert changed.position is not None and changed.position > created.position
    assert await ledger_types(container) == ["ProductCreated", "ProductUpdated"]

    _, variants = await _rows(container)
    assert variants == [("TS-1", "withdrawn", Decimal("99.9000")), ("TS-2", "active", Decimal("119.9000"))]
    async with container.engine.connect() as conn:
        stream = await load_stream(conn, f"product-{created.product_id}")
    event = stream[-1].decode()
    assert isinstance(event, ProductUpdated) and event.changed == ("variants",)
    assert [(v.sku, v.status, v.price) for v in event.product.variants] == [
        ("TS-2", "active", Decimal("119.90")),
        ("TS-1", "withdrawn", Decimal("99.90")),
    ]

    # Bringing a withdrawn variant back is a change; repeating it is not.
    back = product("trail-shoe", "Trail Shoe", [variant("TS-2", "119.90"), variant("TS-1", "99.90")])
    assert (await upsert(container, back)).position is not None
    assert (await upsert(container, back)).position is None
    assert len(await ledger_types(container)) == 3


async def test_invalid_input_writes_nothing(container: Container) -> None:
    bad = product("Bad Handle!", "  ", [variant("A-1", "1.999"), variant("A-1", "-1")], currency_code="XXX")
    with pytest.raises(ValidationErrors) as caught:
        await upsert(container, bad)
    fields = {tuple(e.field or ()) for e in caught.value.errors}
    assert {
        ("handle",),
        ("title",),
        ("currencyCode",),
        ("variants", "1", "sku"),
        ("variants", "1", "price"),
    } <= fields
    assert await _rows(container) == ([], [])
    assert await ledger_types(container) == []


async def test_sku_owned_by_another_product_is_refused(container: Container) -> None:
    await upsert(container, product("kettle", variants=[variant("K-1")]))
    with pytest.raises(ValidationErrors) as caught:
        await upsert(container, product("teapot", variants=[variant("T-1"), variant("K-1")]))
    assert [e.field for e in caught.value.errors] == [["variants", "1", "sku"]]
    products, variants = await _rows(container)
    assert products == [("kettle", "Kettle")] and [v[0] for v in variants] == ["K-1"]
    assert await ledger_types(container) == ["ProductCreated"]


async def test_concurrent_upserts_of_one_handle_serialize(container: Container) -> None:
    same = product("lamp", "Lamp", [variant("L-1", "5.00")])
    results = await asyncio.gather(*(upsert(container, same) for _ in range(8)))
    assert len({r.product_id for r in results}) == 1
    assert sum(r.position is not None for r in results) == 1
    edits = [product("lamp", f"Lamp {i}", [variant("L-1", "5.00")]) for i in range(6)]
    await asyncio.gather(*(upsert(container, e) for e in edits))
    assert await ledger_types(container) == ["ProductCreated"] + ["ProductUpdated"] * 6


async def test_concurrent_claims_of_one_new_sku_let_one_win(container: Container) -> None:
    claims = [product(f"claim-{i}", variants=[variant("SHARED-1")]) for i in range(5)]
    results = await asyncio.gather(*(upsert(container, c) for c in claims), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, ValidationErrors)]
    assert len(winners) == 1 and len(losers) == 4
    assert all(e.errors[0].field == ["variants", "0", "sku"] for e in losers)
    products, variants = await _rows(container)
    assert len(products) == 1 and variants == [("SHARED-1", "active", Decimal("10.0000"))]
