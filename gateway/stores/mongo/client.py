"""In-memory MongoDB stand-in exposing the subset of pymongo's async API the project uses.

For machines without a MongoDB server: :func:`make_embedded_client` returns a
:class:`MongomockAsyncClient` whose databases the composition root can ``typing.cast`` to
``pymongo.asynchronous.database.AsyncDatabase[dict[str, Any]]``. Call shapes, result classes
(``InsertOneResult``, ``UpdateResult``, ``BulkWriteResult``, ...) and exceptions
(``DuplicateKeyError``, ``BulkWriteError``, ``OperationFailure``, ...) are pymongo's own, and
returned documents are deep copies, as with a server.

Differences from a real server that callers may rely on:

* Each operation runs synchronously on the event loop thread after one cooperative yield, so
  every call, including ``rename(..., dropTarget=True)``, is atomic for other coroutines. A
  client refuses use from any thread other than the one of its first operation.
* ``MongomockAsyncClient.set_available`` (stand-in only, absent from pymongo) simulates an
  outage for tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any, cast

import mongomock
from pymongo import MongoClient, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import ConfigurationError, OperationFailure
from pymongo.operations import IndexModel
from pymongo.results import BulkWriteResult, DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

from gateway.stores.mongo import cursor as core
from gateway.stores.mongo.cursor import (
    ArrayFilters,
    ClientGate,
    Document,
    MongomockAsyncCommandCursor,
    MongomockAsyncCursor,
    Projection,
    SortSpec,
    Update,
    normalize_projection,
    normalize_sort,
    server_errors,
)
from gateway.stores.mongo.index import index_by_id

__all__ = [
    "MongomockAsyncClient",
    "MongomockAsyncCollection",
    "MongomockAsyncCommandCursor",
    "MongomockAsyncCursor",
    "MongomockAsyncDatabase",
    "make_embedded_client",
]

_ILLEGAL_OPERATION = 20
_NAMESPACE_NOT_FOUND = 26
_NAMESPACE_EXISTS = 48


class MongomockAsyncCollection:
    def __init__(
        self, database: MongomockAsyncDatabase, sync: Collection[Document], gate: ClientGate
    ) -> None:
        self._database = database
        self._sync = index_by_id(sync)
        self._gate = gate

    @property
    def name(self) -> str:
        return self._sync.name

    @property
    def full_name(self) -> str:
        return f"{self._database.name}.{self.name}"

    @property
    def database(self) -> MongomockAsyncDatabase:
        return self._database

    def __repr__(self) -> str:
        return f"MongomockAsyncCollection({self.full_name!r})"

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Projection | None = None,
        skip: int = 0,
        limit: int = 0,
        sort: SortSpec | None = None,
    ) -> MongomockAsyncCursor:
        return MongomockAsyncCursor(
            self._gate,
            self._sync,
            filter or {},
            normalize_projection(projection),
            skip,
            limit,
            None if sort is None else normalize_sort(sort),
        )

    async def find_one(
        self,
        filter: Mapping[str, Any] | Any | None = None,
        projection: Projection | None = None,
        skip: int = 0,
        sort: SortSpec | None = None,
    ) -> Document | None:
        if filter is not None and not isinstance(filter, Mapping):
            filter = {"_id": filter}
        found = await self.find(filter, projection, skip, 1, sort).to_list(1)
        return found[0] if found else None

    async def insert_one(self, document: Document) -> InsertOneResult:
        await self._gate.enter()
        with server_errors():
            return self._sync.insert_one(document)

    async def insert_many(self, documents: Iterable[Document], ordered: bool = True) -> InsertManyResult:
        await self._gate.enter()
        with server_errors():
            return self._sync.insert_many(list(documents), ordered=ordered)

    async def update_one(
        self,
        filter: Mapping[str, Any],
        update: Update,
        upsert: bool = False,
        array_filters: ArrayFilters = None,
        sort: SortSpec | None = None,
    ) -> UpdateResult:
        await self._gate.enter()
        with server_errors():
            return core.update_documents(
                self._sync, filter, update, multi=False, upsert=upsert, array_filters=array_filters, sort=sort
            )

    async def update_many(
        self,
        filter: Mapping[str, Any],
        update: Update,
        upsert: bool = False,
        array_filters: ArrayFilters = None,
    ) -> UpdateResult:
        await self._gate.enter()
        with server_errors():
            return core.update_documents(
                self._sync, filter, update, multi=True, upsert=upsert, array_filters=array_filters
            )

    async def replace_one(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool = False,
        sort: SortSpec | None = None,
    ) -> UpdateResult:
        await self._gate.enter()
        with server_errors():
            return core.replace_document(self._sync, filter, replacement, upsert, sort)

    async def delete_one(self, filter: Mapping[str, Any]) -> DeleteResult:
        await self._gate.enter()
        return self._sync.delete_one(filter)

    async def delete_many(self, filter: Mapping[str, Any]) -> DeleteResult:
        await self._gate.enter()
        return self._sync.delete_many(filter)

    async def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Update,
        projection: Projection | None = None,
        sort: SortSpec | None = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        array_filters: ArrayFilters = None,
    ) -> Document | None:
        fields = normalize_projection(projection)
        await self._gate.enter()
        with server_errors():
            return core.find_one_and_update(
                self._sync, filter, update, fields, sort, upsert, bool(return_document), array_filters
            )

    async def bulk_write(self, requests: Sequence[Any], ordered: bool = True) -> BulkWriteResult:
        writes = core.record_bulk(requests)
        await self._gate.enter()
        return core.run_bulk(self._sync, writes, ordered)

    async def count_documents(self, filter: Mapping[str, Any], **kwargs: Any) -> int:
        await self._gate.enter()
        return self._sync.count_documents(filter, **kwargs)

    async def estimated_document_count(self, **kwargs: Any) -> int:
        await self._gate.enter()
        return self._sync.estimated_document_count(**kwargs)

    async def distinct(self, key: str, filter: Mapping[str, Any] | None = None) -> list[Any]:
        await self._gate.enter()
        return self._sync.distinct(key, filter)

    async def create_index(self, keys: SortSpec, **kwargs: Any) -> str:
        await self._gate.enter()
        with server_errors():
            return self._sync.create_index(normalize_sort(keys), **kwargs)

    async def create_indexes(self, indexes: Sequence[IndexModel]) -> list[str]:
        await self._gate.enter()
        names: list[str] = []
        with server_errors():
            for model in indexes:
                # Passed one by one because mongomock's create_indexes drops options such as
                # partialFilterExpression.
                options = {k: v for k, v in model.document.items() if k != "key"}
                names.append(self._sync.create_index(list(model.document["key"].items()), **options))
        return names

    async def index_information(self) -> MutableMapping[str, Any]:
        await self._gate.enter()
        return self._sync.index_information()

    async def drop(self) -> None:
        await self._gate.enter()
        self._sync.drop()

    async def rename(self, new_name: str, **kwargs: Any) -> MutableMapping[str, Any]:
        """Rename within the database; readers see the old or the new collection, never none."""
        drop_target = bool(kwargs.pop("dropTarget", False))
        if kwargs:
            raise NotImplementedError(f"rename options not supported by the stand-in: {sorted(kwargs)}")
        await self._gate.enter()
        sync_db = self._database._sync
        existing = sync_db.list_collection_names()
        if self.name not in existing:
            raise OperationFailure(f"Source collection {self.full_name} does not exist", _NAMESPACE_NOT_FOUND)
        if new_name == self.name:
            raise OperationFailure("Can't rename a collection to itself", _ILLEGAL_OPERATION)
        if new_name in existing and not drop_target:
            raise OperationFailure("target namespace exists", _NAMESPACE_EXISTS)
        cast(Any, sync_db).rename_collection(self.name, new_name, dropTarget=drop_target)
        return {"ok": 1.0}

    async def aggregate(self, pipeline: Sequence[Mapping[str, Any]]) -> MongomockAsyncCommandCursor:
        """Like pymongo's async API, a coroutine: ``cursor = await collection.aggregate(pipeline)``."""
        await self._gate.enter()
        with server_errors():
            documents = list(self._sync.aggregate(list(pipeline)))
        return MongomockAsyncCommandCursor(self._gate, documents)


class MongomockAsyncDatabase:
    def __init__(self, client: MongomockAsyncClient, sync: Database[Document], gate: ClientGate) -> None:
        self._client = client
        self._sync = sync
        self._gate = gate

    @property
    def name(self) -> str:
        return self._sync.name

    @property
    def client(self) -> MongomockAsyncClient:
        return self._client

    def __repr__(self) -> str:
        return f"MongomockAsyncDatabase({self.name!r})"

    def __getitem__(self, name: str) -> MongomockAsyncCollection:
        return self.get_collection(name)

    def get_collection(self, name: str) -> MongomockAsyncCollection:
        return MongomockAsyncCollection(self, self._sync.get_collection(name), self._gate)

    async def create_collection(self, name: str) -> MongomockAsyncCollection:
        await self._gate.enter()
        self._sync.create_collection(name)
        return self.get_collection(name)

    async def list_collection_names(self, filter: Mapping[str, Any] | None = None) -> list[str]:
        await self._gate.enter()
        return self._sync.list_collection_names(filter=filter)

    async def drop_collection(self, name_or_collection: str | MongomockAsyncCollection) -> dict[str, Any]:
        await self._gate.enter()
        name = name_or_collection if isinstance(name_or_collection, str) else name_or_collection.name
        self._sync.drop_collection(name)
        return {"ok": 1.0}

    async def command(
        self, command: str | Mapping[str, Any], value: Any = 1, **kwargs: Any
    ) -> dict[str, Any]:
        await self._gate.enter()
        spec = {command: value} if isinstance(command, str) else dict(command)
        return self._sync.command(spec, **kwargs)


class MongomockAsyncClient:
    """Stand-in for ``pymongo.AsyncMongoClient``; each instance owns an independent in-memory server."""

    def __init__(self) -> None:
        self._sync: MongoClient[Document] = mongomock.MongoClient()
        self._gate = ClientGate()

    def __repr__(self) -> str:
        return "MongomockAsyncClient()"

    def __getitem__(self, name: str) -> MongomockAsyncDatabase:
        return self.get_database(name)

    def get_database(self, name: str | None = None) -> MongomockAsyncDatabase:
        if name is None:
            raise ConfigurationError("No default database name defined or provided.")
        return MongomockAsyncDatabase(self, self._sync.get_database(name), self._gate)

    @property
    def admin(self) -> MongomockAsyncDatabase:
        return self.get_database("admin")

    async def list_database_names(self) -> list[str]:
        await self._gate.enter()
        return self._sync.list_database_names()

    async def drop_database(self, name_or_database: str | MongomockAsyncDatabase) -> None:
        await self._gate.enter()
        name = name_or_database if isinstance(name_or_database, str) else name_or_database.name
        self._sync.drop_database(name)

    async def close(self) -> None:
        """Like pymongo >= 4.0: a closed client raises ``InvalidOperation`` on further use."""
        self._gate.closed = True

    async def __aenter__(self) -> MongomockAsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def set_available(self, available: bool, *, delay: float = 0.0) -> None:
        """Simulate a MongoDB outage (stand-in only; pymongo has no such method).

        While unavailable, every operation through this client, its databases, collections and
        cursors raises ``pymongo.errors.ServerSelectionTimeoutError`` after ``delay`` seconds, as
        server selection timing out would. Stored data is kept and served again once available.
        """
        self._gate.available = available
        self._gate.outage_delay = delay


def make_embedded_client() -> MongomockAsyncClient:
    return MongomockAsyncClient()
