"""Synchronous core of the in-memory MongoDB stand-in: connection gate, cursors and write helpers.

Companion of :mod:`gateway.embedded_mongo`, which wraps these in pymongo's async call shapes;
nothing here is meant to be used on its own. Functions taking a ``Collection`` run directly on
mongomock and must be called right after ``ClientGate.enter()``, without an ``await`` between.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    InvalidOperation,
    OperationFailure,
    ServerSelectionTimeoutError,
)
from pymongo.results import BulkWriteResult, UpdateResult

Document: TypeAlias = dict[str, Any]
Update: TypeAlias = Mapping[str, Any] | Sequence[Mapping[str, Any]]
ArrayFilters: TypeAlias = Sequence[Mapping[str, Any]] | None
Direction: TypeAlias = int | str
SortSpec: TypeAlias = str | Sequence[str | tuple[str, Direction]] | Mapping[str, Direction]
Projection: TypeAlias = Mapping[str, Any] | Iterable[str]


class ClientGate:
    """Connection state shared by a stand-in client and every database, collection and cursor it hands out."""

    def __init__(self) -> None:
        self.available = True
        self.outage_delay = 0.0
        self.closed = False
        self._owner_thread: int | None = None

    async def enter(self) -> None:
        """Admit one operation; the caller must then run it with no further ``await``.

        Yielding once mirrors the network round trip of the real driver, so a polling loop written
        against the stand-in cannot starve other tasks. Because the operation itself runs without
        suspending, each call is atomic with respect to every other coroutine, without any lock.
        """
        await asyncio.sleep(0)
        if not self.available and self.outage_delay > 0:
            await asyncio.sleep(self.outage_delay)
        self._check_thread()
        if self.closed:
            raise InvalidOperation("Cannot use MongomockAsyncClient after close")
        if not self.available:
            raise ServerSelectionTimeoutError(
                "embedded MongoDB stand-in is unavailable (simulated outage via set_available(False))"
            )

    def _check_thread(self) -> None:
        # mongomock is not thread-safe; pinning every client to one thread keeps all access on its event loop.
        current = threading.get_ident()
        if self._owner_thread is None:
            self._owner_thread = current
        elif current != self._owner_thread:
            raise RuntimeError("MongomockAsyncClient is bound to the thread of its first operation")


def normalize_sort(key_or_list: SortSpec, direction: Direction | None = None) -> list[tuple[str, Direction]]:
    """Accept every sort shape pymongo accepts and return (key, direction) pairs."""
    if direction is not None:
        if not isinstance(key_or_list, str):
            raise TypeError(f"Expected a string and a direction, not {type(key_or_list)}")
        return [(key_or_list, direction)]
    if isinstance(key_or_list, str):
        return [(key_or_list, ASCENDING)]
    if isinstance(key_or_list, Mapping):
        return list(key_or_list.items())
    if not isinstance(key_or_list, list | tuple):
        raise TypeError(f"key_or_list must be a str, mapping, list or tuple, not {type(key_or_list)}")
    return [(item, ASCENDING) if isinstance(item, str) else (item[0], item[1]) for item in key_or_list]


def normalize_projection(projection: Projection | None) -> Mapping[str, Any] | None:
    if projection is None or isinstance(projection, Mapping):
        return projection
    fields = list(projection)
    if not all(isinstance(field, str) for field in fields):
        raise TypeError("projection must be a list of key names, each an instance of str")
    return dict.fromkeys(fields, 1)


class _BufferedCursor:
    """Async iteration over a result that is materialised in one synchronous step.

    Materialising at once (rather than iterating mongomock lazily across awaits) keeps other
    coroutines' writes from mutating the store while a result is half read.
    """

    def __init__(self, gate: ClientGate, documents: list[Document] | None = None) -> None:
        self._gate = gate
        self._buffer: deque[Document] | None = None if documents is None else deque(documents)
        self._killed = False

    def _execute(self) -> list[Document]:
        raise NotImplementedError

    async def _fetch(self) -> deque[Document] | None:
        if self._killed or (self._buffer is not None and not self._buffer):
            return None
        await self._gate.enter()
        if self._buffer is None:
            self._buffer = deque(self._execute())
        return self._buffer

    @property
    def alive(self) -> bool:
        return not self._killed and (self._buffer is None or bool(self._buffer))

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        buffer = await self._fetch()
        if not buffer:
            raise StopAsyncIteration
        return buffer.popleft()

    async def next(self) -> Document:
        return await self.__anext__()

    async def to_list(self, length: int | None = None) -> list[Document]:
        if length is not None and length < 1:
            raise ValueError("to_list() length must be greater than 0")
        buffer = await self._fetch()
        if not buffer:
            return []
        count = len(buffer) if length is None else min(length, len(buffer))
        return [buffer.popleft() for _ in range(count)]

    async def close(self) -> None:
        self._killed = True
        self._buffer = deque()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class MongomockAsyncCursor(_BufferedCursor):
    """Counterpart of pymongo's ``AsyncCursor``: lazy until first fetched, then its options are locked."""

    def __init__(
        self,
        gate: ClientGate,
        collection: Collection[Document],
        filter: Mapping[str, Any],
        projection: Mapping[str, Any] | None,
        skip: int,
        limit: int,
        sort: list[tuple[str, Direction]] | None,
    ) -> None:
        super().__init__(gate)
        self._collection = collection
        self._filter = filter
        self._projection = projection
        self._skip = 0
        self._limit = 0
        self._sort = sort
        self.skip(skip)
        self.limit(limit)

    def _check_unstarted(self) -> None:
        if self._buffer is not None:
            raise InvalidOperation("cannot set options after executing query")

    def sort(self, key_or_list: SortSpec, direction: Direction | None = None) -> Self:
        self._check_unstarted()
        self._sort = normalize_sort(key_or_list, direction)
        return self

    def limit(self, limit: int) -> Self:
        if not isinstance(limit, int):
            raise TypeError("limit must be an integer")
        self._check_unstarted()
        self._limit = limit
        return self

    def skip(self, skip: int) -> Self:
        if not isinstance(skip, int):
            raise TypeError("skip must be an integer")
        if skip < 0:
            raise ValueError("skip must be >= 0")
        self._check_unstarted()
        self._skip = skip
        return self

    def _execute(self) -> list[Document]:
        return list(
            self._collection.find(
                self._filter, self._projection, skip=self._skip, limit=self._limit, sort=self._sort
            )
        )


class MongomockAsyncCommandCursor(_BufferedCursor):
    """Counterpart of ``AsyncCommandCursor`` (aggregate results), holding the already computed result."""

    def __init__(self, gate: ClientGate, documents: list[Document]) -> None:
        super().__init__(gate, documents)


@contextmanager
def server_errors() -> Iterator[None]:
    """Give mongomock's errors the ``details`` a server reply carries, for handlers that read them."""
    try:
        yield
    except DuplicateKeyError as exc:
        if exc.details is not None:
            raise
        message = str(exc)
        raise DuplicateKeyError(message, 11000, {"index": 0, "code": 11000, "errmsg": message}) from exc
    except BulkWriteError as exc:
        raise BulkWriteError({**_bulk_totals(), **exc.details}) from exc


def _sorted_target(sync: Collection[Document], filter: Mapping[str, Any], sort: Any) -> Mapping[str, Any]:
    """Resolve a write's ``sort`` option to the first match by ``_id``; mongomock has no such option."""
    if sort is None:
        return filter
    first = sync.find_one(filter, {"_id": 1}, sort=normalize_sort(sort))
    return filter if first is None else {"_id": first["_id"]}


def update_documents(
    sync: Collection[Document],
    filter: Mapping[str, Any],
    update: Update,
    *,
    multi: bool,
    upsert: bool = False,
    array_filters: ArrayFilters = None,
    sort: Any = None,
) -> UpdateResult:
    if multi:
        return sync.update_many(filter, update, upsert=upsert, array_filters=array_filters)
    return sync.update_one(
        _sorted_target(sync, filter, sort), update, upsert=upsert, array_filters=array_filters
    )


def replace_document(
    sync: Collection[Document],
    filter: Mapping[str, Any],
    replacement: Mapping[str, Any],
    upsert: bool,
    sort: Any,
) -> UpdateResult:
    return sync.replace_one(_sorted_target(sync, filter, sort), replacement, upsert=upsert)


def find_one_and_update(
    sync: Collection[Document],
    filter: Mapping[str, Any],
    update: Update,
    projection: Mapping[str, Any] | None,
    sort: Any,
    upsert: bool,
    return_after: bool,
    array_filters: ArrayFilters,
) -> Document | None:
    # Built from primitives: mongomock's own version ignores array_filters and, when the projection
    # drops _id, can update a different document than the one it matched.
    first = sync.find_one(filter, {"_id": 1}, sort=None if sort is None else normalize_sort(sort))
    if first is None:
        if not upsert:
            return None
        upserted = sync.update_one(filter, update, upsert=True, array_filters=array_filters)
        return sync.find_one({"_id": upserted.upserted_id}, projection) if return_after else None
    target = {"_id": first["_id"]}
    before = None if return_after else sync.find_one(target, projection)
    sync.update_one(target, update, array_filters=array_filters)
    return sync.find_one(target, projection) if return_after else before


@dataclass(frozen=True)
class _Write:
    kind: Literal["insert", "update", "replace", "delete"]
    filter: Mapping[str, Any]
    document: Any
    multi: bool = False
    upsert: bool = False
    array_filters: ArrayFilters = None
    sort: Any = None


class _BulkRecorder:
    """Receives pymongo write models through their ``_add_to_bulk`` hook, exactly as pymongo's bulk does.

    mongomock's own bulk_write cannot take the ``sort`` pymongo >= 4.11 passes for UpdateOne/ReplaceOne.
    """

    def __init__(self) -> None:
        self.writes: list[_Write] = []

    def add_insert(self, document: Document) -> None:
        self.writes.append(_Write("insert", {}, document))

    def add_update(
        self, selector: Mapping[str, Any], update: Update, multi: bool, upsert: bool | None, **opts: Any
    ) -> None:
        _reject_collation(opts.get("collation"))
        self.writes.append(
            _Write(
                "update", selector, update, multi, bool(upsert), opts.get("array_filters"), opts.get("sort")
            )
        )

    def add_replace(
        self, selector: Mapping[str, Any], replacement: Document, upsert: bool | None, **opts: Any
    ) -> None:
        _reject_collation(opts.get("collation"))
        self.writes.append(
            _Write("replace", selector, replacement, upsert=bool(upsert), sort=opts.get("sort"))
        )

    def add_delete(self, selector: Mapping[str, Any], limit: int, **opts: Any) -> None:
        _reject_collation(opts.get("collation"))
        self.writes.append(_Write("delete", selector, None, multi=limit == 0))


def _reject_collation(collation: object) -> None:
    if collation is not None:
        raise NotImplementedError("collation is not supported by the embedded MongoDB stand-in")


def _bulk_totals() -> dict[str, Any]:
    return {
        "writeErrors": [],
        "writeConcernErrors": [],
        "nInserted": 0,
        "nUpserted": 0,
        "nMatched": 0,
        "nModified": 0,
        "nRemoved": 0,
        "upserted": [],
    }


def record_bulk(requests: Iterable[Any]) -> list[_Write]:
    recorder = _BulkRecorder()
    for request in requests:
        try:
            request._add_to_bulk(recorder)
        except AttributeError as exc:
            raise TypeError(f"{request!r} is not a valid request") from exc
    if not recorder.writes:
        raise InvalidOperation("No operations to execute")
    return recorder.writes


def run_bulk(sync: Collection[Document], writes: Sequence[_Write], ordered: bool) -> BulkWriteResult:
    totals = _bulk_totals()
    for index, write in enumerate(writes):
        try:
            _apply(sync, write, index, totals)
        except OperationFailure as exc:
            totals["writeErrors"].append(
                {"index": index, "code": exc.code, "errmsg": str(exc), "op": write.document}
            )
            if ordered:
                break
    if totals["writeErrors"]:
        raise BulkWriteError(totals)
    return BulkWriteResult(totals, acknowledged=True)


def _apply(sync: Collection[Document], write: _Write, index: int, totals: dict[str, Any]) -> None:
    if write.kind == "insert":
        sync.insert_one(write.document)
        totals["nInserted"] += 1
        return
    if write.kind == "delete":
        totals["nRemoved"] += (sync.delete_many if write.multi else sync.delete_one)(
            write.filter
        ).deleted_count
        return
    if write.kind == "update":
        result = update_documents(
            sync,
            write.filter,
            write.document,
            multi=write.multi,
            upsert=write.upsert,
            array_filters=write.array_filters,
            sort=write.sort,
        )
    else:
        result = replace_document(sync, write.filter, write.document, write.upsert, write.sort)
    if result.upserted_id is not None:
        totals["nUpserted"] += 1
        totals["upserted"].append({"index": index, "_id": result.upserted_id})
    else:
        totals["nMatched"] += result.matched_count
    totals["nModified"] += result.modified_count
