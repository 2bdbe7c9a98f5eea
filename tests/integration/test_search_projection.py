"""The search projection: freshness, the stream-version guard, withdrawn variants, rebuild,
and the documents it wrote itself (stock changes fold into them without reading them back)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from elastic_transport import ConnectionError as TransportConnectionError
from elasticsearch import AsyncElasticsearch
from sqlalchemy import text

from commands.events.catalog import ProductCreated
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import Checkpoint, head_position, load_stream
from gateway.bootstrap.container import Container
from gateway.bootstrap.seed import demo_catalog, seed_catalog
from projections import checkpoints
from projections.runner import ProjectionRunner
from projections.search.mapping import INDEX_MAPPINGS, INDEX_SETTINGS, product_document
from projections.search.projector import FIRST_GENERATION, SearchProjection, alias_name, index_name
from projections.search.stock import StockLevel, latest_stock
from queries.products import SearchRequest
from tests.support.catalog import CallCounter, product, products, upsert, variant
from tests.support.inventory import append_bucket_event, set_stock


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


# -- documents the projector wrote itself ----------------------------------------------------------


async def _indexed(client: AsyncElasticsearch, index: str, product_id: str) -> dict[str, Any]:
    source: dict[str, Any] = (await client.get(index=index, id=product_id))["_source"]
    return source


def _mgets(counter: CallCounter) -> list[str]:
    return [path for path in counter.paths if path.endswith("/_mget")]


async def _engine_calls_to_catch_up(runner: ProjectionRunner, client: AsyncElasticsearch) -> CallCounter:
    """The requests the search runner sends the engine while it catches up."""
    counter = CallCounter(client)
    try:
        await runner.catch_up()
    finally:
        counter.close()
    return counter


@contextlib.contextmanager
def _bulk_fails_once(client: AsyncElasticsearch, error: BaseException) -> Iterator[list[str]]:
    """The next bulk request raises ``error`` before reaching the engine (wraps the transport)."""
    transport = client.transport
    original = transport.perform_request
    failed: list[str] = []

    async def failing(method: str, target: str, *args: Any, **kwargs: Any) -> Any:
        if not failed and target.split("?")[0].endswith("/_bulk"):
            failed.append(target)
            raise error
        return await original(method, target, *args, **kwargs)

    transport.perform_request = failing  # type: ignore[method-assign]
    try:
        yield failed
    finally:
        transport.perform_request = original  # type: ignore[method-assign]


async def test_only_a_stock_change_that_flips_in_stock_is_written_and_none_is_read(
    container: Container,
) -> None:
    runner, client = container.runner("search"), container.search
    alias = alias_name(container.settings.index_prefix)
    created = await upsert(container, product("kettle", "Kettle", [variant("KET-1"), variant("KET-2")]))
    await set_stock(container, "KET-1", 4)
    await runner.catch_up()

    # (sku, on hand, whether search sees a change): a sale of a SKU in stock costs no write.
    for sku, on_hand, flips in (
        ("KET-1", 0, True),
        ("KET-2", 9, False),
        ("KET-1", 2, True),
        ("KET-1", 1, False),
    ):
        await set_stock(container, sku, on_hand)
        counter = await _engine_calls_to_catch_up(runner, client)
        assert _mgets(counter) == []
        assert any(path.endswith("/_bulk") for path in counter.paths) is flips, (sku, on_hand)

    doc = await _indexed(client, alias, created.product_id)
    stock = {v["sku"]: (v["in_stock"], v["stock_version"]) for v in doc["variants"]}
    # As of KET-1's last flip (its version 3; the whole document, KET-2's fold included, went
    # with it): KET-1's later sale (version 4) is not written.
    assert stock == {"KET-1": (True, 3), "KET-2": (True, 1)} and doc["in_stock"] is True
    assert "available" not in doc["variants"][0], "exact numbers come from the inventory read model"
    assert doc["stream_version"] == 1 and doc["title"] == "Kettle"

    await set_stock(container, "KET-2", 0)
    await set_stock(container, "KET-1", 0)
    await runner.catch_up()
    doc = await _indexed(client, alias, created.product_id)
    assert doc["in_stock"] is False and [v["in_stock"] for v in doc["variants"]] == [False, False]


@pytest.mark.parametrize(
    "error",
    [TransportConnectionError("engine unreachable"), asyncio.CancelledError()],
    ids=["error", "cancel"],
)
async def test_a_failed_bulk_leaves_no_unwritten_change_in_memory(
    container: Container, error: BaseException
) -> None:
    runner, client = container.runner("search"), container.search
    alias = alias_name(container.settings.index_prefix)
    created = await upsert(container, product("teapot", "Teapot", [variant("POT-1")]))
    await set_stock(container, "POT-1", 5)
    await runner.catch_up()

    await set_stock(container, "POT-1", 0)
    with _bulk_fails_once(client, error) as failed, pytest.raises(type(error)):
        await runner.catch_up()
    assert failed and (await _indexed(client, alias, created.product_id))["variants"][0]["in_stock"] is True

    # The same batch again: the sell-out it folded before the failure must still be written.
    await runner.catch_up()
    doc = await _indexed(client, alias, created.product_id)
    assert (doc["variants"][0]["in_stock"], doc["variants"][0]["stock_version"], doc["in_stock"]) == (
        False,
        2,
        False,
    )
    await set_stock(container, "POT-1", 3)
    await runner.catch_up()
    doc = await _indexed(client, alias, created.product_id)
    assert (doc["variants"][0]["in_stock"], doc["in_stock"]) == (True, True)


async def test_setup_again_reads_what_another_writer_left_in_the_index(container: Container) -> None:
    runner, client = container.runner("search"), container.search
    projection = runner.projection
    alias = alias_name(container.settings.index_prefix)
    created = await upsert(container, product("ladle", "Ladle", [variant("LAD-1")]))
    await runner.catch_up()

    # Another process held the lease meanwhile and wrote the document.
    elsewhere = await _indexed(client, alias, created.product_id)
    elsewhere["title"] = "Ladle (written elsewhere)"
    await client.index(index=alias, id=created.product_id, document=elsewhere, refresh=True)
    await projection.setup()

    await set_stock(container, "LAD-1", 0)
    counter = await _engine_calls_to_catch_up(runner, client)
    assert len(_mgets(counter)) == 1
    doc = await _indexed(client, alias, created.product_id)
    assert (doc["title"], doc["variants"][0]["in_stock"]) == ("Ladle (written elsewhere)", False)

    # A document read but not written is kept too: after the first change that flips nothing
    # (one read), the next ones cost the engine nothing.
    await projection.setup()
    for reads in (1, 0):
        await set_stock(container, "LAD-1", 0)
        counter = await _engine_calls_to_catch_up(runner, client)
        assert len(_mgets(counter)) == reads
        assert not any(path.endswith("/_bulk") for path in counter.paths)


async def test_promote_reads_the_new_index_not_what_it_wrote_to_the_old_one(container: Container) -> None:
    runner, client = container.runner("search"), container.search
    projection = runner.projection
    assert isinstance(projection, SearchProjection)
    alias = alias_name(container.settings.index_prefix)
    created = await upsert(container, product("whisk", "Whisk", [variant("WHI-1")]))
    await runner.catch_up()

    copy = projection.rebuild_copy("cache")
    assert isinstance(copy, SearchProjection) and copy.index is not None
    await copy.setup()
    rebuilt = await _indexed(client, alias, created.product_id)
    rebuilt["title"] = "Whisk (rebuilt)"
    await client.index(index=copy.index, id=created.product_id, document=rebuilt, refresh=True)
    await projection.promote(copy)

    await set_stock(container, "WHI-1", 0)
    await runner.catch_up()
    doc = await _indexed(client, alias, created.product_id)
    assert (doc["title"], doc["variants"][0]["in_stock"]) == ("Whisk (rebuilt)", False)


# -- stock buckets: a variant is in stock while any of its buckets is ------------------------------


def _variant(doc: dict[str, Any], sku: str) -> dict[str, Any]:
    (found,) = [v for v in doc["variants"] if v["sku"] == sku]
    return found


async def _in_stock_only(container: Container, handle: str) -> bool:
    page = await products(container).search(SearchRequest(in_stock_only=True, first=50))
    return handle in [hit.product.handle for hit in page.hits]


async def test_a_variant_runs_out_only_when_every_bucket_is_empty(container: Container) -> None:
    runner, client = container.runner("search"), container.search
    alias = alias_name(container.settings.index_prefix)
    created = await upsert(container, product("drum", "Drum", [variant("DRM-1"), variant("DRM-2")]))
    pid = created.product_id
    await append_bucket_event(container, "DRM-2", 0, pid, 0)  # the product's stock rests on DRM-1
    await append_bucket_event(container, "DRM-1", 0, pid, 6)
    await append_bucket_event(container, "DRM-1", 0, pid, 2)  # bucket 0 at version 2, ahead of the others
    await runner.catch_up()

    # (bucket, on hand, reserved, DRM-1 in stock, whether the document is written)
    for bucket, on_hand, reserved, in_stock, written in (
        (1, 2, 0, True, True),  # a bucket gets stock: what each bucket holds is written
        (2, 2, 0, True, True),
        (0, 2, 2, True, True),  # bucket 0 runs out, buckets 1 and 2 still hold stock
        (1, 2, 1, True, False),  # a sale that empties no bucket costs the engine nothing
        (1, 2, 2, True, True),
        (2, 2, 2, False, True),  # the last unit of the last bucket
        (2, 2, 2, False, False),  # a change that changes no number
        (1, 2, 1, True, True),  # a release in one bucket brings the variant back
    ):
        await append_bucket_event(container, "DRM-1", bucket, pid, on_hand, reserved)
        counter = await _engine_calls_to_catch_up(runner, client)
        assert _mgets(counter) == []
        assert any(path.endswith("/_bulk") for path in counter.paths) is written, (bucket, on_hand, reserved)
        doc = await _indexed(client, alias, pid)
        assert _variant(doc, "DRM-1")["in_stock"] is in_stock, (bucket, on_hand, reserved)
        assert doc["in_stock"] is in_stock and await _in_stock_only(container, "drum") is in_stock

    doc = await _indexed(client, alias, pid)
    drum = _variant(doc, "DRM-1")
    assert drum["stock_buckets"] == {"0": [3, 0], "1": [4, 1], "2": [3, 0]}
    assert drum["stock_version"] == 3  # bucket 0's
    # A SKU with bucket 0 alone is written as before buckets.
    other = _variant(doc, "DRM-2")
    assert (other["in_stock"], other["stock_version"], "stock_buckets" in other) == (False, 1, False)


async def test_a_document_read_back_knows_which_buckets_hold_stock(container: Container) -> None:
    """The document in the index, not only the projector's memory, says which buckets have stock:
    one read back (another process, an eviction) and then told a bucket ran out stays right."""
    runner, client = container.runner("search"), container.search
    projection = runner.projection
    alias = alias_name(container.settings.index_prefix)
    created = await upsert(container, product("bell", "Bell", [variant("BEL-1")]))
    pid = created.product_id
    await append_bucket_event(container, "BEL-1", 0, pid, 3)
    await append_bucket_event(container, "BEL-1", 1, pid, 2)
    await runner.catch_up()

    for bucket, on_hand, reserved, in_stock in (
        (0, 3, 3, True),  # bucket 1 still holds 2
        (1, 2, 2, False),  # and now none does
        (0, 5, 3, True),
        (1, 4, 2, True),
        (0, 5, 5, True),  # bucket 1 holds 2 again
    ):
        await projection.setup()  # forgets the documents it wrote: reads them back
        await append_bucket_event(container, "BEL-1", bucket, pid, on_hand, reserved)
        await runner.catch_up()
        doc = await _indexed(client, alias, pid)
        assert (doc["variants"][0]["in_stock"], doc["in_stock"]) == (in_stock, in_stock), (bucket, on_hand)


async def test_buckets_survive_replays_product_updates_and_a_rebuild(container: Container) -> None:
    runner, client = container.runner("search"), container.search
    alias = alias_name(container.settings.index_prefix)
    created = await upsert(container, product("gong", "Gong", [variant("GNG-1"), variant("GNG-10")]))
    pid = created.product_id
    await append_bucket_event(container, "GNG-1", 0, pid, 1)
    await append_bucket_event(container, "GNG-1", 0, pid, 0)  # bucket 0 empty at version 2
    await append_bucket_event(container, "GNG-1", 1, pid, 3)
    await append_bucket_event(container, "GNG-10", 0, pid, 0)
    await append_bucket_event(container, "GNG-10", 3, pid, 0)
    await runner.catch_up()
    doc = await _indexed(client, alias, pid)
    assert _variant(doc, "GNG-1")["stock_buckets"] == {"0": [2, 0], "1": [1, 3]}
    assert (_variant(doc, "GNG-10")["in_stock"], doc["in_stock"]) == (False, True)

    # Every stream of the SKUs asked for, and no other SKU's (GNG-10 starts like GNG-1).
    async with container.engine.connect() as conn:
        assert await latest_stock(conn, ["GNG-1"]) == {
            ("GNG-1", 0): StockLevel(pid, 0, 2),
            ("GNG-1", 1): StockLevel(pid, 3, 1),
        }
        assert set(await latest_stock(conn, ["GNG-10", "GNG-1", "GNG-10"])) == {
            ("GNG-1", 0),
            ("GNG-1", 1),
            ("GNG-10", 0),
            ("GNG-10", 3),
        }

    # A product update rebuilds the document from its catalog event and every bucket's latest.
    await upsert(container, product("gong", "Gong XL", [variant("GNG-1"), variant("GNG-10")]))
    await runner.catch_up()
    updated = await _indexed(client, alias, pid)
    assert updated["title"] == "Gong XL" and updated["variants"] == doc["variants"]

    # A replay from the start, every event delivered again, changes nothing.
    async with container.engine.begin() as conn:
        await checkpoints.reset(conn, "search")
    runner.adopt(Checkpoint())
    await runner.catch_up()
    assert await _indexed(client, alias, pid) == updated

    await container.rebuilder.run(runner)
    assert await _indexed(client, alias, pid) == updated
    # The rebuilt document knows bucket 1 holds the only stock.
    await append_bucket_event(container, "GNG-1", 1, pid, 3, 3)
    await runner.catch_up()
    doc = await _indexed(client, alias, pid)
    assert (_variant(doc, "GNG-1")["in_stock"], doc["in_stock"]) == (False, False)


async def test_an_index_and_documents_from_before_buckets_keep_working(container: Container) -> None:
    client = container.search
    prefix = f"{container.settings.index_prefix}old_"
    created = await upsert(container, product("horn", "Horn", [variant("HRN-1")]))
    pid = created.product_id
    await append_bucket_event(container, "HRN-1", 0, pid, 0)  # inventory-HRN-1 v1: sold out

    # The index and its document as the release before buckets left them.
    old_mappings = copy.deepcopy(INDEX_MAPPINGS)
    del old_mappings["properties"]["variants"]["properties"]["stock_buckets"]
    index = index_name(prefix, FIRST_GENERATION)
    await client.indices.create(index=index, settings=INDEX_SETTINGS, mappings=old_mappings)
    await client.indices.update_aliases(actions=[{"add": {"index": index, "alias": alias_name(prefix)}}])
    async with container.engine.connect() as conn:
        (created_event,) = await load_stream(conn, f"product-{pid}")
    event = created_event.decode()
    assert isinstance(event, ProductCreated)
    old = product_document(event.product, 1)
    old["variants"][0].update(in_stock=False, stock_version=1)
    old["in_stock"] = False
    await client.index(index=index, id=pid, document=old, refresh=True)

    projection = SearchProjection(client, prefix)
    await projection.setup()
    mapping = (await client.indices.get_mapping(index=index))[index]["mappings"]
    assert mapping["properties"]["variants"]["properties"]["stock_buckets"] == {
        "type": "object",
        "enabled": False,
    }

    late = await append_bucket_event(container, "HRN-1", 1, pid, 4)
    async with container.engine.connect() as conn:
        await projection.apply([late], await asyncpg_of(conn))
    doc = await _indexed(client, index, pid)
    assert doc["variants"][0]["stock_buckets"] == {"0": [1, 0], "1": [1, 4]}
    assert (doc["variants"][0]["in_stock"], doc["variants"][0]["stock_version"], doc["in_stock"]) == (
        True,
        1,
        True,
    )
