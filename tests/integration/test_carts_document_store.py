"""Contract of the carts document store: what ``CartsProjection`` writes, ``CartQueries`` reads.

Runs against every adapter the gateway can be given: the in-memory stand-in always, and a real
MongoDB through ``pymongo.AsyncMongoClient`` when ``MONGODB_URL`` is set. Events come from the real
command bus and ledger (the ``container`` fixture); the documents go to the adapter under test.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import pytest
from pymongo import AsyncMongoClient, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from commands.messages.cart import AddCartLines, AttachCartToCustomer, CreateCart, LineRequest
from commands.store.ledger.reader import RecordedEvent
from gateway.bootstrap.container import Container
from gateway.stores import mongo_stand_in
from gateway.stores.mongo_stand_in import StandInMongoClient
from projections.carts import CartsProjection
from queries.carts import CartQueries
from tests.support.cart import (
    GUEST,
    META,
    cart_stream,
    customer,
    document_state,
    expected_document,
    folded,
    seed_catalog,
)

Document = dict[str, Any]
MONGODB_URL = os.environ.get("MONGODB_URL", "")
REAL_MONGODB = bool(MONGODB_URL) and not MONGODB_URL.startswith("mongomock://")


@pytest.fixture(
    params=[
        pytest.param("stand-in"),
        pytest.param(
            "mongodb",
            marks=pytest.mark.skipif(not REAL_MONGODB, reason="MONGODB_URL is not set to a MongoDB server"),
        ),
    ]
)
async def db(request: pytest.FixtureRequest) -> AsyncIterator[AsyncDatabase[Document]]:
    name = f"carts_contract_{uuid.uuid4().hex[:12]}"
    if request.param == "mongodb":
        real: AsyncMongoClient[Document] = AsyncMongoClient(
            MONGODB_URL, serverSelectionTimeoutMS=3000, tz_aware=True
        )
        try:
            yield real[name]
        finally:
            await real.drop_database(name)
            await real.close()
    else:
        stand_in = StandInMongoClient()
        yield cast(AsyncDatabase[Document], stand_in[name])
        await stand_in.close()


async def _project(
    container: Container, projection: CartsProjection, events: Sequence[RecordedEvent]
) -> None:
    async with container.engine.connect() as conn:
        await projection.apply(events, conn)


async def _streams(container: Container, *cart_ids: str) -> list[RecordedEvent]:
    events = [event for cart_id in cart_ids for event in await cart_stream(container, cart_id)]
    return sorted(events, key=lambda event: event.position)


def _stored(moment: datetime) -> datetime:
    """A datetime as MongoDB keeps it: UTC, millisecond precision."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def test_each_cart_is_one_document_read_back_by_id(
    container: Container, db: AsyncDatabase[Document]
) -> None:
    await seed_catalog(container)
    first = (await container.bus.dispatch(CreateCart(GUEST, lines=(LineRequest("MUG", 2),)), META)).cart_id
    second = (await container.bus.dispatch(CreateCart(customer("cust-1")), META)).cart_id
    await container.bus.dispatch(AddCartLines(second, customer("cust-1"), (LineRequest("CAP", 1),)), META)
    projection = CartsProjection(db)
    await projection.setup()
    await _project(container, projection, await _streams(container, first, second))

    queries = CartQueries(db)
    for cart_id in (first, second):
        doc = await db["carts"].find_one({"_id": cart_id})
        assert doc is not None
        assert document_state(doc) == expected_document(await folded(container, cart_id))
        events = await cart_stream(container, cart_id)
        view = await queries.get(cart_id)
        assert view is not None and view.cart_id == cart_id and view.version == len(events)
        assert view.created_at == _stored(events[0].recorded_at)
        assert view.updated_at == _stored(events[-1].recorded_at)
    view = await queries.get(second)
    assert view is not None and view.customer_id == "cust-1" and view.currency_code == "USD"
    assert [(line.sku, line.quantity, line.unit_price) for line in view.lines] == [("CAP", 1, Decimal(12))]
    assert await queries.get(str(uuid.uuid4())) is None
    assert await db.list_collection_names() == ["carts"]
    assert "customer_status_updated" in await db["carts"].index_information()


async def test_version_guard_applies_each_event_once_and_in_stream_order(
    container: Container, db: AsyncDatabase[Document]
) -> None:
    await seed_catalog(container)
    cart = (await container.bus.dispatch(CreateCart(GUEST), META)).cart_id
    for sku in ("MUG", "CAP", "MUG"):
        await container.bus.dispatch(AddCartLines(cart, GUEST, (LineRequest(sku, 1),)), META)
    events = await cart_stream(container, cart)
    projection = CartsProjection(db)
    await projection.setup()

    # A jump past missing events reloads them from the ledger; redeliveries and stale events are no-ops.
    await _project(container, projection, events[-1:])
    await _project(container, projection, events)
    await _project(container, projection, events[:2])

    doc = await db["carts"].find_one({"_id": cart})
    assert doc is not None and doc["version"] == len(events) == 4
    assert document_state(doc) == expected_document(await folded(container, cart))
    view = await CartQueries(db).get(cart)
    assert view is not None and {line.sku: line.quantity for line in view.lines} == {"MUG": 2, "CAP": 1}


async def test_a_customer_reads_their_most_recently_updated_active_cart(
    container: Container, db: AsyncDatabase[Document]
) -> None:
    await seed_catalog(container)
    cust = customer("cust-1")
    older = (await container.bus.dispatch(CreateCart(cust), META)).cart_id
    await asyncio.sleep(0.005)  # distinct millisecond timestamps, the precision MongoDB keeps
    newer = (await container.bus.dispatch(CreateCart(cust), META)).cart_id
    other = (await container.bus.dispatch(CreateCart(customer("cust-2")), META)).cart_id
    projection = CartsProjection(db)
    await projection.setup()
    queries = CartQueries(db)
    await _project(container, projection, await _streams(container, older, newer, other))
    view = await queries.active_for_customer("cust-1")
    assert view is not None and view.cart_id == newer

    await asyncio.sleep(0.005)
    await container.bus.dispatch(AddCartLines(older, cust, (LineRequest("MUG", 1),)), META)
    guest = (await container.bus.dispatch(CreateCart(GUEST, lines=(LineRequest("CAP", 1),)), META)).cart_id
    merged = await container.bus.dispatch(AttachCartToCustomer(guest, cust), META)
    assert merged.cart_id == older
    await _project(container, projection, await _streams(container, older, guest))

    view = await queries.active_for_customer("cust-1")
    assert view is not None and view.cart_id == older
    assert {line.sku: line.quantity for line in view.lines} == {"MUG": 1, "CAP": 1}
    guest_view = await queries.get(guest)
    assert guest_view is not None and (guest_view.status, guest_view.merged_into) == ("MERGED", older)
    other_view = await queries.active_for_customer("cust-2")
    assert other_view is not None and other_view.cart_id == other
    assert await queries.active_for_customer("nobody") is None


async def test_a_rebuilt_copy_replaces_the_live_collection_on_promote(
    container: Container, db: AsyncDatabase[Document]
) -> None:
    await seed_catalog(container)
    carts = [
        (
            await container.bus.dispatch(
                CreateCart(customer(f"cust-{n}"), lines=(LineRequest("MUG", n + 1),)), META
            )
        ).cart_id
        for n in range(2)
    ]
    live = CartsProjection(db)
    await live.setup()
    await _project(container, live, await _streams(container, carts[0]))
    copy = live.rebuild_copy("g2")
    assert isinstance(copy, CartsProjection)
    await copy.setup()
    await _project(container, copy, await _streams(container, *carts))

    await live.promote(copy)

    assert await db.list_collection_names() == ["carts"]
    assert "customer_status_updated" in await db["carts"].index_information()
    queries = CartQueries(db)
    for cart_id in carts:
        view = await queries.get(cart_id)
        assert view is not None and view.version == 1
    all_docs = await db["carts"].find({}, sort=[("_id", 1)]).to_list(None)
    assert [doc["_id"] for doc in all_docs] == sorted(carts)


async def test_the_stand_in_finds_carts_by_id_without_scanning(monkeypatch: pytest.MonkeyPatch) -> None:
    client = StandInMongoClient()
    db = cast(AsyncDatabase[Document], client["commerce"])
    await db["carts"].bulk_write(
        [
            _replace(f"c{n}", {"customer_id": f"cust-{n % 7}", "status": "ACTIVE" if n % 2 else "MERGED"})
            for n in range(2000)
        ],
        ordered=False,
    )
    examined: list[Document] = []
    matches = mongo_stand_in.filter_applies

    def counting(filter: Any, document: Document) -> bool:
        examined.append(document)
        return matches(filter, document)

    monkeypatch.setattr(mongo_stand_in, "filter_applies", counting)

    assert (doc := await db["carts"].find_one({"_id": "c7"})) is not None and doc["status"] == "ACTIVE"
    found = await db["carts"].find({"_id": {"$in": ["c1", "c2", "c3", "missing"]}}).to_list(None)
    assert sorted(doc["_id"] for doc in found) == ["c1", "c2", "c3"]
    assert len(examined) == 1 + 3, "only the named documents are looked at"

    examined.clear()
    await db["carts"].bulk_write([_replace("c9", {"status": "CHECKED_OUT"})], ordered=False)
    assert examined == [], "replacing by _id looks at no other document"
    assert (doc := await db["carts"].find_one({"_id": "c9"})) is not None and doc["status"] == "CHECKED_OUT"

    examined.clear()
    merged = await db["carts"].find({"customer_id": "cust-0", "status": "MERGED"}).to_list(None)
    assert len(merged) == len([n for n in range(0, 2000, 2) if n % 7 == 0])
    assert len(examined) == 2000, "other filters scan, so the count above is a real measure"
    await client.close()


def _replace(cart_id: str, fields: Document) -> ReplaceOne[Document]:
    return ReplaceOne({"_id": cart_id}, {"_id": cart_id, **fields}, upsert=True)
