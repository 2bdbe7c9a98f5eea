"""One behaviour suite for every MongoDB adapter: the mongomock stand-in always, a real server when
MONGODB_URL is set. Stand-in-only features (outage simulation, thread pinning) are tested at the end."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest
from pymongo import (
    ASCENDING,
    DESCENDING,
    AsyncMongoClient,
    DeleteOne,
    IndexModel,
    InsertOne,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
)
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    InvalidOperation,
    OperationFailure,
    ServerSelectionTimeoutError,
)
from pymongo.results import BulkWriteResult, DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

from gateway.stores.mongo.client import MongomockAsyncClient, make_embedded_client

Doc = dict[str, Any]
Client = AsyncMongoClient[Doc]
ClientFactory = Callable[[], Client]


def _embedded_client() -> Client:
    return cast(Client, make_embedded_client())


def _real_client() -> Client:
    return AsyncMongoClient(os.environ["MONGODB_URL"], serverSelectionTimeoutMS=5000)


ADAPTERS = [pytest.param(_embedded_client, id="mongomock")]
if os.environ.get("MONGODB_URL"):
    ADAPTERS.append(pytest.param(_real_client, id="pymongo"))


@pytest.fixture(scope="module", params=ADAPTERS)
def client_factory(request: pytest.FixtureRequest) -> ClientFactory:
    return cast(ClientFactory, request.param)


@pytest.fixture(scope="module")
async def client(client_factory: ClientFactory) -> AsyncIterator[Client]:
    shared = client_factory()
    yield shared
    await shared.close()


@pytest.fixture
async def db(client: Client) -> AsyncIterator[AsyncDatabase[Doc]]:
    name = f"contract_{uuid.uuid4().hex[:16]}"
    yield client[name]
    await client.drop_database(name)


@pytest.fixture
def carts(db: AsyncDatabase[Doc]) -> AsyncCollection[Doc]:
    return db["carts"]


@pytest.fixture
async def embedded() -> AsyncIterator[MongomockAsyncClient]:
    stand_in = make_embedded_client()
    yield stand_in
    await stand_in.close()


async def _seed(carts: AsyncCollection[Doc], count: int = 6) -> None:
    await carts.insert_many(
        [{"_id": i, "n": i, "tag": "even" if i % 2 == 0 else "odd"} for i in range(count)]
    )


async def test_admin_database_and_collection_names(client: Client, db: AsyncDatabase[Doc]) -> None:
    assert (await client.admin.command("ping"))["ok"] == 1
    assert (await db.command("ping"))["ok"] == 1
    assert client.get_database(db.name).name == db.name
    assert db.get_collection("carts").name == db["carts"].name == "carts"

    await db["carts"].insert_one({"x": 1})
    await db["other"].insert_one({"x": 1})
    assert db.name in await client.list_database_names()
    assert sorted(await db.list_collection_names()) == ["carts", "other"]

    await db.drop_collection("other")
    assert await db.list_collection_names() == ["carts"]
    await db["carts"].drop()
    assert await db.list_collection_names() == []


async def test_drop_database(client: Client) -> None:
    name = f"contract_{uuid.uuid4().hex[:16]}"
    await client[name]["c"].insert_one({"x": 1})
    assert name in await client.list_database_names()
    await client.drop_database(name)
    assert name not in await client.list_database_names()


async def test_insert_and_find_one(carts: AsyncCollection[Doc]) -> None:
    doc: Doc = {"sku": "a", "qty": 1}
    result = await carts.insert_one(doc)
    assert isinstance(result, InsertOneResult)
    assert doc["_id"] == result.inserted_id

    many = await carts.insert_many([{"sku": "b", "qty": 3}, {"sku": "c", "qty": 2}])
    assert isinstance(many, InsertManyResult)
    assert len(many.inserted_ids) == 2

    assert await carts.find_one({"sku": "a"}) == doc
    assert await carts.find_one({"sku": "b"}, {"_id": 0, "qty": 1}) == {"qty": 3}
    assert await carts.find_one({"sku": "b"}, ["sku"]) == {"_id": many.inserted_ids[0], "sku": "b"}
    top = await carts.find_one({}, sort=[("qty", DESCENDING)])
    assert top is not None and top["sku"] == "b"
    assert await carts.find_one({"sku": "missing"}) is None


async def test_filters_in_gt_lte(carts: AsyncCollection[Doc]) -> None:
    await _seed(carts)

    async def ids(filter: Doc) -> list[int]:
        return [d["_id"] async for d in carts.find(filter, sort=[("_id", ASCENDING)])]

    assert await ids({"n": {"$in": [1, 4, 9]}}) == [1, 4]
    assert await ids({"n": {"$gt": 3}}) == [4, 5]
    assert await ids({"n": {"$lte": 2}}) == [0, 1, 2]
    assert await ids({"n": {"$gt": 1, "$lte": 3}, "tag": "odd"}) == [3]


async def test_find_sort_limit_skip(carts: AsyncCollection[Doc]) -> None:
    await _seed(carts)

    by_kwargs = await carts.find({}, {"n": 1}, sort=[("n", DESCENDING)], skip=1, limit=3).to_list()
    assert [d["n"] for d in by_kwargs] == [4, 3, 2]

    cursor = carts.find({"tag": "even"}).sort("n", DESCENDING).skip(1).limit(5)
    assert [d["n"] async for d in cursor] == [2, 0]

    compound = carts.find().sort([("tag", ASCENDING), ("n", DESCENDING)])
    assert [d["n"] for d in await compound.to_list()] == [4, 2, 0, 5, 3, 1]

    partial = carts.find().sort("n")
    assert [d["n"] for d in await partial.to_list(2)] == [0, 1]
    assert [d["n"] for d in await partial.to_list(3)] == [2, 3, 4]
    with pytest.raises(InvalidOperation):
        partial.limit(1)
    assert [d["n"] for d in await partial.to_list()] == [5]
    assert await partial.to_list() == []


async def test_update_operators(carts: AsyncCollection[Doc]) -> None:
    await carts.insert_one({"_id": "c1", "items": [], "total": 10, "coupon": "X", "status": "open"})

    result = await carts.update_one(
        {"_id": "c1"},
        {
            "$set": {"status": "paid"},
            "$inc": {"total": 5},
            "$push": {"items": "sku-1"},
            "$unset": {"coupon": ""},
        },
    )
    assert isinstance(result, UpdateResult)
    assert (result.matched_count, result.modified_count, result.upserted_id) == (1, 1, None)
    assert await carts.find_one({"_id": "c1"}) == {
        "_id": "c1",
        "items": ["sku-1"],
        "total": 15,
        "status": "paid",
    }

    missing = await carts.update_one({"_id": "nope"}, {"$set": {"a": 1}})
    assert (missing.matched_count, missing.modified_count) == (0, 0)

    await carts.insert_many([{"_id": "c2", "status": "open"}, {"_id": "c3", "status": "open"}])
    many = await carts.update_many({"status": "open"}, {"$set": {"status": "stale"}})
    assert (many.matched_count, many.modified_count) == (2, 2)


async def test_upsert_semantics(carts: AsyncCollection[Doc]) -> None:
    update = {"$inc": {"qty": 1}, "$setOnInsert": {"created": True}}
    first = await carts.update_one({"sku": "a"}, update, upsert=True)
    assert first.matched_count == 0 and first.upserted_id is not None
    await carts.update_one({"sku": "a"}, {"$set": {"created": False}})
    second = await carts.update_one({"sku": "a"}, update, upsert=True)
    assert (second.matched_count, second.modified_count, second.upserted_id) == (1, 1, None)
    assert await carts.find_one({"sku": "a"}, {"_id": 0}) == {"sku": "a", "qty": 2, "created": False}

    replaced = await carts.replace_one({"_id": "r1"}, {"state": "new"}, upsert=True)
    assert replaced.upserted_id == "r1"
    replaced = await carts.replace_one({"_id": "r1"}, {"state": "next"}, upsert=True)
    assert (replaced.matched_count, replaced.upserted_id) == (1, None)
    assert await carts.find_one({"_id": "r1"}) == {"_id": "r1", "state": "next"}

    many = await carts.update_many({"sku": "zzz"}, {"$set": {"qty": 0}}, upsert=True)
    assert many.upserted_id is not None


async def test_find_one_and_update(carts: AsyncCollection[Doc]) -> None:
    before_upsert = await carts.find_one_and_update(
        {"_id": "c0"}, {"$set": {"v": 0}}, upsert=True, return_document=ReturnDocument.BEFORE
    )
    assert before_upsert is None

    created = await carts.find_one_and_update(
        {"_id": "c1"},
        {"$inc": {"version": 1}, "$setOnInsert": {"items": []}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert created == {"_id": "c1", "version": 1, "items": []}

    before = await carts.find_one_and_update({"_id": "c1"}, {"$inc": {"version": 1}})
    assert before is not None and before["version"] == 1

    after = await carts.find_one_and_update(
        {"_id": "c1"}, {"$push": {"items": "x"}}, projection={"_id": 0, "items": 1}, return_document=True
    )
    assert after == {"items": ["x"]}
    assert await carts.find_one_and_update({"_id": "none"}, {"$set": {"v": 1}}) is None

    await carts.insert_many([{"_id": "s1", "rank": 2}, {"_id": "s2", "rank": 1}])
    first_by_rank = await carts.find_one_and_update(
        {"rank": {"$exists": True}},
        {"$set": {"picked": True}},
        projection={"_id": 0, "rank": 1},
        sort=[("rank", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )
    assert first_by_rank == {"rank": 1}
    assert await carts.find_one({"picked": True}, {"_id": 1}) == {"_id": "s2"}


async def test_delete(carts: AsyncCollection[Doc]) -> None:
    await _seed(carts)
    one = await carts.delete_one({"tag": "odd"})
    assert isinstance(one, DeleteResult) and one.deleted_count == 1
    many = await carts.delete_many({"tag": "even"})
    assert many.deleted_count == 3
    assert await carts.count_documents({}) == 2


async def test_bulk_write_mixed(carts: AsyncCollection[Doc]) -> None:
    await _seed(carts, 4)
    result = await carts.bulk_write(
        [
            InsertOne({"_id": 10, "n": 10, "tag": "even"}),
            UpdateOne({"_id": 1}, {"$set": {"n": 100}}),
            UpdateOne({"_id": 50}, {"$set": {"n": 50}}, upsert=True),
            UpdateMany({"tag": "even"}, {"$inc": {"n": 1}}),
            ReplaceOne({"_id": 3}, {"n": 3, "tag": "replaced"}),
            ReplaceOne({"_id": 60}, {"n": 60}, upsert=True),
            UpdateOne({"_id": 1}, {"$set": {"n": 100}}),
            DeleteOne({"_id": 2}),
        ],
        ordered=True,
    )
    assert isinstance(result, BulkWriteResult)
    assert result.inserted_count == 1
    assert result.matched_count == 1 + 3 + 1 + 1
    assert result.modified_count == 1 + 3 + 1 + 0
    assert result.upserted_count == 2
    assert result.upserted_ids == {2: 50, 5: 60}
    assert result.deleted_count == 1
    docs = {d["_id"]: d.get("n") async for d in carts.find()}
    assert docs == {0: 1, 1: 100, 3: 3, 10: 11, 50: 50, 60: 60}


async def test_duplicate_key_on_unique_index(carts: AsyncCollection[Doc]) -> None:
    await carts.create_index("sku", unique=True)
    await carts.insert_one({"sku": "a"})

    with pytest.raises(DuplicateKeyError) as single:
        await carts.insert_one({"sku": "a"})
    assert isinstance(single.value, OperationFailure) and single.value.code == 11000

    with pytest.raises(DuplicateKeyError):
        await carts.update_one({"sku": "b"}, {"$set": {"sku": "a"}}, upsert=True)

    with pytest.raises(BulkWriteError) as many:
        await carts.insert_many([{"sku": "d"}, {"sku": "a"}, {"sku": "e"}])
    assert many.value.details["nInserted"] == 1
    assert many.value.details["writeErrors"][0]["code"] == 11000
    assert many.value.details["writeErrors"][0]["index"] == 1


async def test_duplicate_key_in_bulk_write(carts: AsyncCollection[Doc]) -> None:
    await carts.create_index([("sku", ASCENDING)], unique=True)
    await carts.insert_one({"sku": "a"})

    with pytest.raises(BulkWriteError) as ordered:
        await carts.bulk_write([InsertOne({"sku": "b"}), InsertOne({"sku": "a"}), InsertOne({"sku": "c"})])
    details = ordered.value.details
    assert details["nInserted"] == 1
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(1, 11000)]
    assert await carts.count_documents({"sku": "c"}) == 0

    with pytest.raises(BulkWriteError) as unordered:
        await carts.bulk_write(
            [
                InsertOne({"sku": "a"}),
                UpdateOne({"sku": "x"}, {"$set": {"v": 1}}, upsert=True),
                InsertOne({"sku": "c"}),
            ],
            ordered=False,
        )
    details = unordered.value.details
    assert (details["nInserted"], details["nUpserted"]) == (1, 1)
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(0, 11000)]
    assert await carts.count_documents({"sku": {"$in": ["c", "x"]}}) == 2


async def test_counts_and_distinct(carts: AsyncCollection[Doc]) -> None:
    await _seed(carts)
    assert await carts.count_documents({}) == 6
    assert await carts.count_documents({"tag": "odd"}) == 3
    assert await carts.count_documents({}, skip=2, limit=3) == 3
    assert await carts.estimated_document_count() == 6
    assert sorted(await carts.distinct("tag")) == ["even", "odd"]
    assert sorted(await carts.distinct("n", {"tag": "odd"})) == [1, 3, 5]


async def test_indexes(carts: AsyncCollection[Doc]) -> None:
    assert await carts.create_index([("cart_id", ASCENDING), ("line", DESCENDING)]) == "cart_id_1_line_-1"
    assert await carts.create_index("owner", unique=True, name="owner_unique") == "owner_unique"
    names = await carts.create_indexes(
        [
            IndexModel([("updated_at", DESCENDING)]),
            IndexModel(
                "coupon", name="coupon_partial", partialFilterExpression={"coupon": {"$exists": True}}
            ),
        ]
    )
    assert names == ["updated_at_-1", "coupon_partial"]

    info = await carts.index_information()
    assert set(info) == {"_id_", "cart_id_1_line_-1", "owner_unique", "updated_at_-1", "coupon_partial"}
    assert info["cart_id_1_line_-1"]["key"] == [("cart_id", 1), ("line", -1)]
    assert info["owner_unique"]["unique"] is True
    assert info["coupon_partial"]["partialFilterExpression"] == {"coupon": {"$exists": True}}


async def test_rename_with_drop_target(db: AsyncDatabase[Doc]) -> None:
    live, rebuilt = db["carts"], db["carts_next"]
    await live.insert_many([{"_id": 1, "v": "old"}, {"_id": 2, "v": "old"}])
    await live.create_index("legacy")
    await rebuilt.insert_one({"_id": 1, "v": "new"})
    await rebuilt.create_index("owner")

    with pytest.raises(OperationFailure):
        await rebuilt.rename("carts")
    with pytest.raises(OperationFailure):
        await db["absent"].rename("anything")

    assert (await rebuilt.rename("carts", dropTarget=True))["ok"] == 1
    assert await db.list_collection_names() == ["carts"]
    assert await live.find({}).to_list() == [{"_id": 1, "v": "new"}]
    assert set(await live.index_information()) == {"_id_", "owner_1"}
    assert await rebuilt.count_documents({}) == 0


async def test_readers_never_see_missing_collection_during_rename(db: AsyncDatabase[Doc]) -> None:
    await db["carts"].insert_many([{"_id": i, "v": "old"} for i in range(5)])
    await db["carts_next"].insert_many([{"_id": i, "v": "new"} for i in range(7)])
    counts: list[int] = []
    missing: list[int] = []
    stop = asyncio.Event()

    async def reader() -> None:
        while not stop.is_set():
            counts.append(await db["carts"].count_documents({}))
            if await db["carts"].find_one({"_id": 0}) is None:
                missing.append(len(counts))

    readers = [asyncio.create_task(reader()) for _ in range(3)]
    for _ in range(3):
        await db["carts"].find_one({})
    await db["carts_next"].rename("carts", dropTarget=True)
    for _ in range(3):
        await db["carts"].find_one({})
    stop.set()
    await asyncio.gather(*readers)

    assert counts and set(counts) <= {5, 7}
    assert missing == []
    assert await db["carts"].count_documents({}) == 7


async def test_aggregate(carts: AsyncCollection[Doc]) -> None:
    await _seed(carts)
    cursor = await carts.aggregate(
        [
            {"$match": {"n": {"$gte": 1}}},
            {"$group": {"_id": "$tag", "total": {"$sum": "$n"}, "count": {"$sum": 1}}},
            {"$sort": {"_id": 1}},
        ]
    )
    assert await cursor.to_list() == [
        {"_id": "even", "total": 6, "count": 2},
        {"_id": "odd", "total": 9, "count": 3},
    ]
    streamed = await carts.aggregate([{"$sort": {"n": -1}}, {"$limit": 2}, {"$project": {"_id": 0, "n": 1}}])
    assert [d async for d in streamed] == [{"n": 5}, {"n": 4}]


async def test_returned_documents_are_deep_copies(carts: AsyncCollection[Doc]) -> None:
    original: Doc = {"_id": "c1", "lines": [{"sku": "a", "qty": 1}], "meta": {"tags": ["x"]}}
    await carts.insert_one(original)
    original["lines"][0]["qty"] = 99
    line: Doc = {"sku": "b", "qty": 2}
    await carts.update_one({"_id": "c1"}, {"$push": {"lines": line}})
    line["qty"] = 99
    expected: Doc = {
        "_id": "c1",
        "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}],
        "meta": {"tags": ["x"]},
    }

    found = await carts.find_one({"_id": "c1"})
    assert found == expected
    found["meta"]["tags"].append("mutated")
    listed = await carts.find({}).to_list()
    listed[0]["lines"].clear()
    aggregated = await (await carts.aggregate([{"$match": {}}])).to_list()
    aggregated[0]["meta"]["tags"].clear()
    updated = await carts.find_one_and_update(
        {"_id": "c1"}, {"$set": {"seen": True}}, return_document=ReturnDocument.AFTER
    )
    assert updated is not None
    updated["lines"][0]["qty"] = -1

    assert await carts.find_one({"_id": "c1"}, {"seen": 0}) == expected


async def test_closed_client_rejects_operations(client_factory: ClientFactory) -> None:
    own = client_factory()
    assert (await own.admin.command("ping"))["ok"] == 1
    await own.close()
    with pytest.raises(InvalidOperation):
        await own.admin.command("ping")


# Stand-in only: pymongo has no equivalent of these features.


async def test_outage_simulation_and_recovery(embedded: MongomockAsyncClient) -> None:
    db = cast(AsyncDatabase[Doc], embedded["shop"])
    carts = db["carts"]
    await carts.insert_one({"_id": "c1", "qty": 1})
    await carts.create_index("owner")
    pending = carts.find({})

    embedded.set_available(False, delay=0.02)
    started = time.perf_counter()
    with pytest.raises(ServerSelectionTimeoutError):
        await carts.find_one({"_id": "c1"})
    assert time.perf_counter() - started >= 0.02

    embedded.set_available(False)
    operations: list[Callable[[], Any]] = [
        lambda: carts.insert_one({"_id": "c2"}),
        lambda: carts.update_one({"_id": "c1"}, {"$inc": {"qty": 1}}),
        lambda: carts.bulk_write([InsertOne({"_id": "c3"})]),
        lambda: carts.find({}).to_list(),
        pending.to_list,
        lambda: carts.aggregate([]),
        lambda: carts.count_documents({}),
        lambda: carts.index_information(),
        lambda: carts.rename("elsewhere"),
        db.list_collection_names,
        lambda: db.command("ping"),
        lambda: cast(Client, embedded).admin.command("ping"),
        embedded.list_database_names,
    ]
    for operation in operations:
        with pytest.raises(ServerSelectionTimeoutError):
            await operation()

    embedded.set_available(True)
    assert await pending.to_list() == [{"_id": "c1", "qty": 1}]
    assert await carts.update_one({"_id": "c1"}, {"$inc": {"qty": 1}}) is not None
    assert await carts.find_one({"_id": "c1"}) == {"_id": "c1", "qty": 2}
    assert "owner_1" in await carts.index_information()


async def test_cursor_fails_mid_iteration_during_outage(embedded: MongomockAsyncClient) -> None:
    carts = cast(AsyncCollection[Doc], embedded["shop"]["carts"])
    await carts.insert_many([{"_id": i} for i in range(3)])
    cursor = carts.find({}).sort("_id")
    assert await cursor.next() == {"_id": 0}
    embedded.set_available(False)
    with pytest.raises(ServerSelectionTimeoutError):
        await cursor.next()
    embedded.set_available(True)
    assert await cursor.to_list() == [{"_id": 1}, {"_id": 2}]


async def test_use_from_another_thread_is_refused(embedded: MongomockAsyncClient) -> None:
    carts = embedded["shop"]["carts"]
    await carts.insert_one({"_id": 1})

    def foreign_thread() -> None:
        asyncio.run(carts.count_documents({}))

    with pytest.raises(RuntimeError, match="thread"):
        await asyncio.to_thread(foreign_thread)
    assert await carts.count_documents({}) == 1
