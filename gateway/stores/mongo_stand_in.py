"""In-memory MongoDB stand-in: the part of PyMongo's async API the carts read model uses.

Only these call shapes exist (anything else is an ``AttributeError``, so new uses show up in
tests rather than behaving differently from a server):

* client: ``client[db]``, ``await client.close()``;
* database: ``db[collection]``, ``await db.command("ping")``, ``await db.list_collection_names()``;
* collection: ``find(filter, sort=...)`` (``async for`` / ``await cursor.to_list()``),
  ``await find_one(filter, sort=...)``, ``await bulk_write([ReplaceOne(...)], ordered=...)``,
  ``await update_one({"_id": ...}, {"$set": ...})``, ``await create_indexes([IndexModel(...)])``,
  ``await index_information()``, ``await rename(name, dropTarget=...)``.

Documents go through BSON on every write and read, so callers get their own copies, UTC-aware
datetimes at millisecond precision (as from ``AsyncMongoClient(tz_aware=True)``) and errors for what
BSON cannot store. Each collection is one dict keyed by ``_id``: filters that name ``_id`` (equality
or ``$in``) and writes by ``_id`` look documents up instead of scanning. Other filters and sorts use
mongomock's public matching and ordering functions (those of its own ``find``) over every document.

``set_available(False)`` (stand-in only) simulates an outage: every operation then raises
``ServerSelectionTimeoutError``, as the driver does when no server answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, NamedTuple, Self, cast

import bson
from bson.codec_options import CodecOptions
from mongomock import filtering
from pymongo import ReplaceOne
from pymongo.errors import InvalidOperation, OperationFailure, ServerSelectionTimeoutError
from pymongo.operations import IndexModel
from pymongo.results import BulkWriteResult, UpdateResult

Document = dict[str, Any]
SortSpec = Sequence[tuple[str, int]]

_DECODE: CodecOptions[Document] = CodecOptions(tz_aware=True)
_NAMESPACE_NOT_FOUND = 26
_NAMESPACE_EXISTS = 48
_ID_INDEX = {"_id_": {"v": 2, "key": [("_id", 1)]}}


# mongomock's public matching and ordering, as its own find() applies them (untyped upstream).
filter_applies = cast(Callable[[Mapping[str, Any], Document], bool], filtering.filter_applies)
_sort_key = cast(Callable[[str, Document], Any], filtering.resolve_sort_key)


class _Entry(NamedTuple):
    document: Document  # as decoded once at write time, only ever matched against, never handed out
    raw: bytes  # decoded afresh for every read, so callers get their own copy


class _Stored:
    """One collection's documents by ``_id`` and its secondary index definitions."""

    def __init__(self) -> None:
        self.documents: dict[Hashable, _Entry] = {}
        self.indexes: dict[str, Document] = {}

    def put(self, document: Mapping[str, Any]) -> None:
        # Like a server: _id first, and nothing stored that BSON cannot represent.
        _id = document["_id"]
        raw = bson.encode({"_id": _id, **document})
        self.documents[_id] = _Entry(bson.decode(raw, _DECODE), raw)

    def read(self, _id: Hashable) -> Document | None:
        entry = self.documents.get(_id)
        return None if entry is None else bson.decode(entry.raw, _DECODE)

    def matching(self, filter: Mapping[str, Any]) -> list[Document]:
        ids = _ids_named_by(filter)
        if ids is None:
            candidates = list(self.documents.values())
        else:
            candidates = [self.documents[i] for i in ids if i in self.documents]
        return [
            bson.decode(entry.raw, _DECODE) for entry in candidates if filter_applies(filter, entry.document)
        ]


def _ids_named_by(filter: Mapping[str, Any]) -> list[Hashable] | None:
    """The only ``_id`` values ``filter`` can match, or None when it does not pin ``_id``."""
    if "_id" not in filter:
        return None
    condition = filter["_id"]
    if isinstance(condition, Mapping):
        if set(condition) != {"$in"} or not isinstance(condition["$in"], list | tuple):
            return None
        values = list(condition["$in"])
    else:
        values = [condition]
    try:
        # Hashing each value is the check (cheaper than an ABC test per value on a hot path).
        return list(dict.fromkeys(values))
    except TypeError:
        return None


def _sorted(documents: list[Document], sort: SortSpec | None) -> list[Document]:
    result = documents
    # Stable sorts from the last key to the first give the compound order.
    for key, direction in reversed(sort or []):
        result.sort(key=lambda document: _sort_key(key, document), reverse=direction < 0)
    return result


class StandInMongoClient:
    """Stand-in for ``pymongo.AsyncMongoClient``; each instance is an independent empty server."""

    def __init__(self) -> None:
        self._databases: dict[str, dict[str, _Stored]] = {}
        self._available = True
        self._closed = False

    def __getitem__(self, name: str) -> StandInDatabase:
        return StandInDatabase(self, self._databases.setdefault(name, {}))

    async def close(self) -> None:
        self._closed = True

    def set_available(self, available: bool) -> None:
        """Simulate a MongoDB outage (stand-in only); stored data is served again once available."""
        self._available = available

    async def _round_trip(self) -> None:
        """Admit one operation, which then runs without awaiting, hence atomically for other tasks."""
        # One yield per call, as a network round trip would, so polling loops cannot starve the loop.
        await asyncio.sleep(0)
        if self._closed:
            raise InvalidOperation("Cannot use MongoClient after close")
        if not self._available:
            raise ServerSelectionTimeoutError("MongoDB stand-in unavailable (set_available(False))")


class StandInDatabase:
    def __init__(self, client: StandInMongoClient, collections: dict[str, _Stored]) -> None:
        self._client = client
        self._collections = collections

    def __getitem__(self, name: str) -> StandInCollection:
        return StandInCollection(self._client, self._collections, name)

    async def command(self, command: str) -> Document:
        await self._client._round_trip()
        if command != "ping":
            raise NotImplementedError(f"the MongoDB stand-in only answers ping, not {command!r}")
        return {"ok": 1.0}

    async def list_collection_names(self) -> list[str]:
        await self._client._round_trip()
        return list(self._collections)


class StandInCollection:
    """A handle by name, as in pymongo: it sees whatever collection has that name at call time."""

    def __init__(self, client: StandInMongoClient, collections: dict[str, _Stored], name: str) -> None:
        self._client = client
        self._collections = collections
        self.name = name

    def _existing(self) -> _Stored:
        return self._collections.get(self.name) or _Stored()

    def _created(self) -> _Stored:
        return self._collections.setdefault(self.name, _Stored())

    def find(self, filter: Mapping[str, Any], sort: SortSpec | None = None) -> StandInCursor:
        return StandInCursor(self, filter, sort)

    async def find_one(self, filter: Mapping[str, Any], sort: SortSpec | None = None) -> Document | None:
        found = await self.find(filter, sort).to_list(1)
        return found[0] if found else None

    async def count_documents(self, filter: Mapping[str, Any]) -> int:
        """For operators and benchmarks (how many carts the model holds)."""
        return len(await self.find(filter).to_list())

    async def bulk_write(
        self, requests: Sequence[ReplaceOne[Document]], ordered: bool = True
    ) -> BulkWriteResult:
        replaces = _ReplaceRecorder()
        for request in requests:
            if not isinstance(request, ReplaceOne):
                raise NotImplementedError(
                    f"the MongoDB stand-in only bulk-writes ReplaceOne, not {request!r}"
                )
            # pymongo's own protocol for reading a request's arguments (mongomock uses it too).
            cast(Any, request)._add_to_bulk(replaces)
        if not replaces.writes:
            raise InvalidOperation("No operations to execute")
        await self._client._round_trip()
        stored = self._created()
        result: Document = {
            "nInserted": 0,
            "nUpserted": 0,
            "nMatched": 0,
            "nModified": 0,
            "nRemoved": 0,
            "upserted": [],
            "writeErrors": [],
            "writeConcernErrors": [],
        }
        for index, (_id, replacement, upsert) in enumerate(replaces.writes):
            if _id in stored.documents:
                result["nMatched"] += 1
                result["nModified"] += 1
            elif upsert:
                result["nUpserted"] += 1
                result["upserted"].append({"index": index, "_id": _id})
            else:
                continue
            stored.put({**replacement, "_id": _id})
        return BulkWriteResult(result, acknowledged=True)

    async def update_one(self, filter: Mapping[str, Any], update: Mapping[str, Any]) -> UpdateResult:
        _id = _id_only(filter)
        if set(update) != {"$set"} or any("." in field for field in update["$set"]):
            raise NotImplementedError("the MongoDB stand-in only updates top-level fields with $set")
        await self._client._round_trip()
        stored = self._existing()
        current = stored.read(_id)
        if current is None:
            return UpdateResult(
                {"n": 0, "nModified": 0, "ok": 1.0, "updatedExisting": False}, acknowledged=True
            )
        stored.put({**current, **update["$set"], "_id": _id})
        return UpdateResult({"n": 1, "nModified": 1, "ok": 1.0, "updatedExisting": True}, acknowledged=True)

    async def create_indexes(self, indexes: Sequence[IndexModel]) -> list[str]:
        definitions = [dict(model.document) for model in indexes]
        if any(set(definition) - {"key", "name"} for definition in definitions):
            # Options such as unique would change behaviour the stand-in does not enforce.
            raise NotImplementedError("the MongoDB stand-in only records plain named indexes")
        await self._client._round_trip()
        stored = self._created()
        for definition in definitions:
            stored.indexes[definition["name"]] = {"v": 2, "key": list(definition["key"].items())}
        return [definition["name"] for definition in definitions]

    async def index_information(self) -> Document:
        await self._client._round_trip()
        if self.name not in self._collections:
            return {}
        return {
            **_ID_INDEX,
            **{name: dict(info) for name, info in self._collections[self.name].indexes.items()},
        }

    async def rename(self, new_name: str, dropTarget: bool = False) -> Document:
        await self._client._round_trip()
        if self.name not in self._collections:
            raise OperationFailure(f"Source collection {self.name} does not exist", _NAMESPACE_NOT_FOUND)
        if new_name in self._collections and not dropTarget:
            raise OperationFailure("target namespace exists", _NAMESPACE_EXISTS)
        self._collections[new_name] = self._collections.pop(self.name)
        return {"ok": 1.0}


def _id_only(filter: Mapping[str, Any]) -> Hashable:
    ids = _ids_named_by(filter)
    if set(filter) != {"_id"} or ids is None or len(ids) != 1 or isinstance(filter["_id"], Mapping):
        raise NotImplementedError("the MongoDB stand-in only writes by {'_id': value}")
    return ids[0]


class _ReplaceRecorder:
    """Receives ``ReplaceOne._add_to_bulk`` calls: (``_id``, replacement, upsert) per request."""

    def __init__(self) -> None:
        self.writes: list[tuple[Hashable, Mapping[str, Any], bool]] = []

    def add_replace(
        self, selector: Mapping[str, Any], replacement: Mapping[str, Any], upsert: bool | None, **options: Any
    ) -> None:
        if any(value is not None for value in options.values()):
            raise NotImplementedError(f"the MongoDB stand-in takes no ReplaceOne options: {options}")
        if "_id" in replacement and replacement["_id"] != selector.get("_id"):
            raise NotImplementedError("the MongoDB stand-in cannot change a document's _id")
        self.writes.append((_id_only(selector), replacement, bool(upsert)))


class StandInCursor:
    """Runs its query on first fetch, in one step, so a result never mixes before and after a write."""

    def __init__(
        self, collection: StandInCollection, filter: Mapping[str, Any], sort: SortSpec | None
    ) -> None:
        self._collection = collection
        self._filter = filter
        self._sort = sort
        self._results: Iterator[Document] | None = None

    async def _fetched(self) -> Iterator[Document]:
        if self._results is None:
            await self._collection._client._round_trip()
            matching = self._collection._existing().matching(self._filter)
            self._results = iter(_sorted(matching, self._sort))
        return self._results

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        document = next(await self._fetched(), None)
        if document is None:
            raise StopAsyncIteration
        return document

    async def to_list(self, length: int | None = None) -> list[Document]:
        results = await self._fetched()
        return list(results) if length is None else list(islice(results, length))
