"""Search answers kept per version of the search read model (``gateway/edge/search_cache.py``).

Real engine, real ledger and projectors; the engine's requests are counted at its transport.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy import text

from commands.inventory import reservations
from commands.messages.cart import CreateCart
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.container import Container
from gateway.edge.read_model_versions import _QUERIES
from gateway.edge.search_cache import SearchAnswers
from queries.products import SearchRequest
from tests.support.cart import GUEST
from tests.support.catalog import CallCounter, product, upsert, variant
from tests.support.inventory import in_uow, new_order, reserve, set_stock
from tests.support.waiting import eventually

BRAND = "Kept"
REQUEST = SearchRequest(brands=(BRAND,), first=5)


def searches(counter: CallCounter) -> int:
    return sum(path.endswith("/_search") for path in counter.paths)


@pytest.fixture
async def catalog(container: Container) -> Container:
    for i in range(3):
        await upsert(
            container, product(f"kept-{i}", variants=[variant(f"KEPT-{i}", f"{10 + i}.00")], brand=BRAND)
        )
    await container.runner("search").catch_up()
    return container


@pytest.fixture
def counter(catalog: Container) -> Iterator[CallCounter]:
    counting = CallCounter(catalog.search)
    yield counting
    counting.close()


def answers(
    container: Container, size: int = 16, clock: Callable[[], float] = time.monotonic
) -> SearchAnswers:
    services = container.services
    return SearchAnswers(services.products, services.read_model_versions, size=size, clock=clock)


async def test_a_repeated_search_is_answered_without_the_engine(
    catalog: Container, counter: CallCounter
) -> None:
    search = catalog.services.product_search
    first = await search.search(REQUEST)
    again = await search.search(SearchRequest(brands=(BRAND,), first=5))
    assert searches(counter) == 1
    assert again is first
    assert sorted(hit.product.handle for hit in first.hits) == ["kept-0", "kept-1", "kept-2"]


async def test_a_catalog_change_is_seen_by_the_next_search(catalog: Container, counter: CallCounter) -> None:
    search = answers(catalog)
    before = await search.search(REQUEST)
    await upsert(catalog, product("kept-1", "Renamed", [variant("KEPT-1", "11.00")], brand=BRAND))
    await catalog.runner("search").catch_up()
    after = await search.search(REQUEST)
    assert searches(counter) == 2
    assert "Renamed" not in [hit.product.title for hit in before.hits]
    assert "Renamed" in [hit.product.title for hit in after.hits]


async def test_events_the_search_model_skips_keep_the_answers(
    catalog: Container, counter: CallCounter
) -> None:
    search = answers(catalog)
    await search.search(REQUEST)
    moved_from = catalog.watcher.latest("search")
    await catalog.bus.dispatch(CreateCart(GUEST), MessageMetadata(actor="guest"))
    await catalog.runner("search").catch_up()
    assert catalog.watcher.latest("search") > moved_from  # the checkpoint moved past the cart event
    await search.search(REQUEST)
    assert searches(counter) == 1


async def test_each_spelling_of_a_price_pages_the_same_search(
    catalog: Container, counter: CallCounter
) -> None:
    """10 and 10.00 are one filter: a cursor from either pages the other (answers kept apart)."""
    search = answers(catalog)
    for spelling, other in (("10", "10.00"), ("10.00", "10"), ("10", "10.0"), ("10.00", "10")):
        page = await search.search(SearchRequest(brands=(BRAND,), min_price=Decimal(spelling), first=1))
        rest = await catalog.services.products.search(
            SearchRequest(brands=(BRAND,), min_price=Decimal(other), first=5, after=page.hits[0].cursor)
        )
        assert len(rest.hits) == 2
    assert searches(counter) == 2 + 4  # two spellings asked once each, plus the four direct pages


async def test_answers_age_out(catalog: Container, counter: CallCounter) -> None:
    now = [0.0]
    search = answers(catalog, clock=lambda: now[0])
    await search.search(REQUEST)
    now[0] = 59.0
    await search.search(REQUEST)
    assert searches(counter) == 1
    now[0] = 61.0
    await search.search(REQUEST)
    assert searches(counter) == 2


async def test_the_oldest_answer_goes_first_when_full(catalog: Container, counter: CallCounter) -> None:
    search = answers(catalog, size=2)
    one, two, three = (SearchRequest(brands=(BRAND,), first=n) for n in (1, 2, 3))
    for request in (one, two, one, three):  # `one` used again, so `two` is the oldest
        await search.search(request)
    assert len(search) == 2 and searches(counter) == 3
    await search.search(one)
    assert searches(counter) == 3
    await search.search(two)
    assert searches(counter) == 4


async def test_size_zero_asks_the_engine_every_time(catalog: Container, counter: CallCounter) -> None:
    search = answers(catalog, size=0)
    for _ in range(3):
        await search.search(REQUEST)
    assert searches(counter) == 3 and len(search) == 0


async def test_a_rebuild_drops_the_answers(catalog: Container, counter: CallCounter) -> None:
    """A rebuild swaps the index at the same version: its control notifications void the answers."""
    search = answers(catalog)
    await search.search(REQUEST)
    generation = catalog.services.read_model_versions.generation("search")
    await catalog.rebuilder.run(catalog.runner("search"))

    async def heard() -> bool:
        return catalog.services.read_model_versions.generation("search") > generation

    await eventually(heard, message="the rebuild's control notification never arrived")
    await search.search(REQUEST)
    assert searches(counter) == 2
    assert len(search) == 1


async def test_purchases_that_leave_stock_keep_the_answers(catalog: Container, counter: CallCounter) -> None:
    """The search model writes a document for stock only when a bucket runs out or gets stock."""
    for i in range(3):
        await set_stock(catalog, f"KEPT-{i}", 2)
    await catalog.runner("search").catch_up()
    search = answers(catalog)
    await search.search(REQUEST)
    await reserve(catalog, new_order(), [("KEPT-0", 1)])  # 1 left
    await catalog.runner("search").catch_up()
    await search.search(REQUEST)
    assert searches(counter) == 1
    await reserve(catalog, new_order(), [("KEPT-0", 1)])  # none left: KEPT-0 is out of stock
    await catalog.runner("search").catch_up()
    page = await search.search(SearchRequest(brands=(BRAND,), first=5, in_stock_only=True))
    assert searches(counter) == 2
    assert sorted(hit.product.handle for hit in page.hits) == ["kept-1", "kept-2"]
    await search.search(REQUEST)
    assert searches(counter) == 3  # dropped with the version, not served from before


async def test_stock_given_back_to_an_empty_bucket_drops_the_answers(
    catalog: Container, counter: CallCounter
) -> None:
    await set_stock(catalog, "KEPT-0", 1)
    order = new_order()
    await reserve(catalog, order, [("KEPT-0", 1)])  # none left
    await catalog.runner("search").catch_up()
    search = answers(catalog)
    in_stock = SearchRequest(brands=(BRAND,), first=5, in_stock_only=True)
    assert "kept-0" not in [hit.product.handle for hit in (await search.search(in_stock)).hits]
    await in_uow(catalog, lambda uow: reservations.release(uow, order, reason="cancelled"))
    await catalog.runner("search").catch_up()
    assert "kept-0" in [hit.product.handle for hit in (await search.search(in_stock)).hits]
    assert searches(counter) == 2


async def test_requests_that_miss_together_share_one_engine_call(
    catalog: Container, counter: CallCounter
) -> None:
    search = answers(catalog)
    pages = await asyncio.gather(*(search.search(REQUEST) for _ in range(10)))
    assert searches(counter) == 1
    assert all(page is pages[0] for page in pages)


async def test_a_waiter_that_goes_away_leaves_the_shared_call_to_the_others(
    catalog: Container, counter: CallCounter
) -> None:
    counter.hold = asyncio.Event()  # the engine's client waits until both requests wait on its call

    async def asked() -> bool:
        return searches(counter) == 1

    search = answers(catalog)
    first = asyncio.create_task(search.search(REQUEST))
    await eventually(asked, message="the engine was never asked")
    second = asyncio.create_task(search.search(REQUEST))
    await asyncio.sleep(0.05)  # the second joins the call in flight
    first.cancel()
    counter.hold.set()
    page = await second
    assert first.cancelled() and page.hits and searches(counter) == 1
    assert (await search.search(REQUEST)) is page  # kept, though its first asker left


async def test_the_search_models_version_is_one_probe_of_its_partial_index(catalog: Container) -> None:
    """Found through ``ledger_events_catalog_changes`` however many purchases came after it."""
    async with catalog.engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = (
            await conn.execute(
                text(f"EXPLAIN {_QUERIES['search'].text}"),
                {"after_tx": "0", "after_position": 0, "upto_tx": "999999999", "upto_position": 10**9},
            )
        ).scalars()
        assert "ledger_events_catalog_changes" in "\n".join(plan)
