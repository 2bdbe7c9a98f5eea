"""The search projection: freshness, the stream-version guard, withdrawn variants, rebuild."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from decimal import Decimal

from sqlalchemy import text

from commands.store.ledger.reader import Checkpoint, head_position, load_stream
from gateway.bootstrap.container import Container
from gateway.bootstrap.seed import demo_catalog, seed_catalog
from projections import checkpoints
from projections.search.projector import SearchProjection, alias_name
from queries.products import SearchRequest
from tests.support.catalog import product, products, upsert, variant


async def test_search_lags_until_the_projector_applies_and_waits_are_woken(container: Container) -> None:
    service, runner = products(container), container.runner("search")
    await runner.catch_up()
    result = await upsert(container, product("rain-jacket", "Rain Jacket"))
    assert result.position is not None

    lagging = await container.freshness.freshness("search")
    assert (lagging.lag_events, lagging.head_position) == (1, result.position)
    assert (await service.search(SearchRequest(query="rain jacket"))).total == 0

    waiter = asyncio.create_task(container.freshness.wait_for("search", result.position, timeout=5))
    await asyncio.sleep(0.05)  # a window in which a waiter that ignored the position would return
    assert not waiter.done()
    await runner.catch_up()
    await waiter

    fresh = await container.freshness.freshness("search")
    assert (fresh.lag_events, fresh.position) == (0, result.position)
    found = await service.search(SearchRequest(query="rain jacket"))
    assert [h.product.handle for h in found.hits] == ["rain-jacket"]


async def test_stream_version_guard_skips_replays_and_reloads_jumps(container: Container) -> None:
    for title in ("Mug", "Mug v2", "Mug v3"):
        result = await upsert(container, product("mug", title, [variant("MUG-1", "8.00")]))
    stream_id = f"product-{result.product_id}"
    async with container.engine.connect() as conn:
        v1, v2, v3 = await load_stream(conn, stream_id)

    fresh = SearchProjection(container.search, f"{container.settings.index_prefix}guard_")
    await fresh.setup()
    async with container.engine.connect() as conn:
        await fresh.apply([v3], conn)  # a jump: v1 and v2 reloaded from the ledger
        await fresh.apply([v2, v1], conn)  # late and replayed: skipped
    doc = await container.search.get(index=fresh.alias, id=result.product_id)
    assert (doc["_source"]["stream_version"], doc["_source"]["title"]) == (3, "Mug v3")

    # A full replay from the start changes nothing either.
    runner = container.runner("search")
    await runner.catch_up()
    async with container.engine.begin() as conn:
        await checkpoints.reset(conn, "search")
    runner.adopt(Checkpoint())
    await runner.catch_up()
    view = (await products(container).by_ids([result.product_id]))[result.product_id]
    assert view.title == "Mug v3"


async def test_withdrawn_variants_leave_search_and_sku_lookups(container: Container) -> None:
    service = products(container)
    both = [variant("CUP-S", "5.00"), variant("CUP-XL", "700.00")]
    await upsert(container, product("cup", "Cup", both))
    await upsert(container, product("cup", "Cup", [variant("CUP-S", "5.00")]))
    await container.runner("search").catch_up()

    found = await service.by_skus(["CUP-S", "CUP-XL"])
    assert list(found) == ["CUP-S"] and [v.sku for v in found["CUP-S"].variants] == ["CUP-S"]
    assert (await service.search(SearchRequest(min_price=Decimal(600)))).total == 0
    page = await service.search(SearchRequest())
    assert [(b.lower, b.count) for b in page.facets.prices if b.count] == [(None, 1)]


async def test_rebuild_under_concurrent_search_traffic(container: Container) -> None:
    commands = demo_catalog(150, seed=3)
    await seed_catalog(container, commands)
    await container.start_projectors()
    service, client = products(container), container.search
    alias = alias_name(container.settings.index_prefix)
    async with container.engine.connect() as conn:
        head = await head_position(conn)
    await container.freshness.wait_for("search", head, timeout=10)
    before = list((await client.indices.get_alias(name=alias)).body)

    stop = asyncio.Event()
    totals: list[int] = []
    errors: list[BaseException] = []

    async def reader() -> None:
        while not stop.is_set():
            try:
                page = await service.search(SearchRequest(first=5))
                totals.append(page.total)
                assert sum(c for _, c in page.facets.brands) == len(commands)
            except BaseException as exc:
                errors.append(exc)
                return
            await asyncio.sleep(0)  # yield, so reads interleave with the rebuild and the writes

    async def writer() -> None:
        for i, command in enumerate(commands[:20]):
            await upsert(container, dataclasses.replace(command, title=f"Renamed {i}"))

    readers = [asyncio.create_task(reader()) for _ in range(3)]
    try:
        await asyncio.gather(container.rebuilder.run(container.runner("search")), writer())
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.gather(*readers)
    assert errors == [] and len(totals) > 10 and set(totals) == {len(commands)}

    after = list((await client.indices.get_alias(name=alias)).body)
    assert len(after) == 1 and after != before
    assert not await client.indices.exists(index=before[0])
    async with container.engine.connect() as conn:
        head = await head_position(conn)
        rows = await conn.execute(
            text("SELECT stream_id, max(stream_version) AS v FROM ledger_events GROUP BY stream_id")
        )
        versions = {r.stream_id: r.v for r in rows}
    await container.freshness.wait_for("search", head, timeout=10)
    await client.indices.refresh(index=alias)
    docs = await client.search(index=alias, size=500, source_includes=["product_id", "stream_version"])
    indexed = {
        f"product-{h['_source']['product_id']}": h["_source"]["stream_version"] for h in docs["hits"]["hits"]
    }
    assert indexed == versions
