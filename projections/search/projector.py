"""The ``search`` projection: product documents in Elasticsearch.

The live projection writes through the alias ``<prefix>products``, which points
at one versioned index ``<prefix>products_v<generation>``. A rebuild writes a
fresh generation directly and ``promote`` swaps the alias in one
``update_aliases`` call, then drops the old index.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cachetools import LRUCache
from elasticsearch import AsyncElasticsearch, NotFoundError

from commands.events.catalog import PRODUCT_EVENT_TYPES, ProductCreated, ProductUpdated
from commands.store.driver import PgConnection
from commands.store.ledger.reader import RecordedEvent, load_stream
from projections.rebuild import COPY_SUFFIX
from projections.runner import Projection
from projections.search.mapping import INDEX_MAPPINGS, INDEX_SETTINGS, product_document
from projections.search.stock import INVENTORY_EVENT_TYPES, apply_stock, latest_stock, stock_from_events
from projections.version_guard import events_to_fold, group_by_stream

log = logging.getLogger(__name__)

NAME = "search"
BULK_TIMEOUT_SECONDS = 60.0
FIRST_GENERATION = "1"
# Documents as the index holds them (written or read last), kept to fold stock changes without
# reading them again.
INDEXED_DOCUMENTS_CACHED = 10_000


class SearchProjectionError(RuntimeError):
    """The search engine refused some documents of a batch."""


def alias_name(prefix: str) -> str:
    return f"{prefix}products"


def index_name(prefix: str, generation: str) -> str:
    return f"{prefix}products_v{generation}"


class SearchProjection:
    store = "elasticsearch"

    def __init__(
        self, client: AsyncElasticsearch, prefix: str, *, name: str = NAME, index: str | None = None
    ) -> None:
        self.name = name
        self._client = client
        # A first load indexes thousands of documents per batch: more than the client's 10 s.
        self._bulk_client = client.options(request_timeout=BULK_TIMEOUT_SECONDS)
        self._prefix = prefix
        self.alias = alias_name(prefix)
        # None: the live model, written through the alias. Otherwise a rebuild copy.
        self.index = index
        # Product id -> the document as the index holds it while this projector is its only writer
        # (it holds the lease, see _bulk_index): as the last successful bulk wrote it, or as read,
        # with stock changes that flipped nothing folded in (those are not written).
        self._indexed: LRUCache[str, dict[str, Any]] = LRUCache(INDEXED_DOCUMENTS_CACHED)

    @property
    def target(self) -> str:
        return self.index or self.alias

    async def setup(self) -> None:
        # The runner sets up again after it (re)takes the lease: another process may have
        # written the index meanwhile.
        self._indexed.clear()
        if self.index is not None:
            await self._create_index(self.index)
            return
        if await self._client.indices.exists_alias(name=self.alias):
            # The mapping is strict: an index created by an earlier release needs the fields added
            # since (stock_buckets) before it takes documents that have them. Adding fields to a
            # live index is allowed, and fields stated as they are change nothing.
            await self._client.indices.put_mapping(index=self.alias, properties=INDEX_MAPPINGS["properties"])
            return
        first = index_name(self._prefix, FIRST_GENERATION)
        await self._create_index(first)
        await self._client.indices.update_aliases(actions=[{"add": {"index": first, "alias": self.alias}}])

    async def _create_index(self, index: str) -> None:
        if await self._client.indices.exists(index=index):
            return
        await self._client.indices.create(index=index, settings=INDEX_SETTINGS, mappings=INDEX_MAPPINGS)

    def wants(self, event: RecordedEvent) -> bool:
        return event.type in PRODUCT_EVENT_TYPES or event.type in INVENTORY_EVENT_TYPES

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        try:
            await self._apply(events, conn)
        except BaseException:
            # apply_stock folds into cached documents in place: after a failure (engine error,
            # rejected documents, cancellation) they may hold changes the index never got.
            self._indexed.clear()
            raise

    async def _apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        product_events = [e for e in events if e.type in PRODUCT_EVENT_TYPES]
        inventory_events = [e for e in events if e.type in INVENTORY_EVENT_TYPES]
        documents = await self._product_documents(product_events, conn)
        if inventory_events:
            await self._apply_inventory(inventory_events, documents)
        await self._bulk_index(documents)

    async def _product_documents(
        self, events: Sequence[RecordedEvent], conn: PgConnection
    ) -> dict[str, dict[str, Any]]:
        by_stream = group_by_stream(events)
        if not by_stream:
            return {}
        existing = await self._existing([_product_id(stream_id) for stream_id in by_stream])

        async def reload(stream_id: str, after: int) -> list[RecordedEvent]:
            return await load_stream(conn, stream_id, after)

        documents: dict[str, dict[str, Any]] = {}
        for stream_id, stream_events in by_stream.items():
            product_id = _product_id(stream_id)
            known = int(existing.get(product_id, {}).get("stream_version", 0))
            run = await events_to_fold(known, stream_events, reload)
            if not run:
                continue
            latest = run[-1]
            event = latest.decode()
            assert isinstance(event, ProductCreated | ProductUpdated)
            documents[product_id] = product_document(event.product, latest.stream_version)
        skus = [v["sku"] for doc in documents.values() for v in doc["variants"]]
        levels = await latest_stock(conn, skus)
        for document in documents.values():
            apply_stock(document, levels)
        return documents

    async def _existing(self, product_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The indexed documents of ``product_ids`` (those found), in that order."""
        found = {pid: doc for pid in product_ids if (doc := self._indexed.get(pid)) is not None}
        unwritten = [pid for pid in product_ids if pid not in found]
        if unwritten:
            response = await self._client.mget(index=self.target, ids=unwritten)
            fetched = {doc["_id"]: doc["_source"] for doc in response["docs"] if doc.get("found")}
            # Kept like the documents written: most stock changes flip nothing and write nothing,
            # and a product read once is not read again for each of them.
            self._indexed.update(fetched)
            found.update(fetched)
        return {pid: found[pid] for pid in product_ids if pid in found}

    async def _apply_inventory(
        self, events: Sequence[RecordedEvent], documents: dict[str, dict[str, Any]]
    ) -> None:
        """Fold stock levels into the documents of this batch, fetching the others once."""
        levels = stock_from_events(events)
        for document in documents.values():
            apply_stock(document, levels)
        named = {level.product_id for level in levels.values() if level.product_id is not None}
        missing = sorted(named - set(documents))
        for product_id, document in (await self._existing(missing)).items():
            if apply_stock(document, levels):
                documents[product_id] = document

    async def _bulk_index(self, documents: dict[str, dict[str, Any]]) -> None:
        if not documents:
            return
        operations: list[dict[str, Any]] = []
        for product_id, document in documents.items():
            # This projector is the only writer of its index, and it read every document it
            # writes in this batch (from the engine, or as it wrote it last), so versions are
            # guarded above (product stream version and per-variant stock version); whole
            # documents are written back.
            operations.append({"index": {"_index": self.target, "_id": product_id}})
            operations.append(document)
        # Refresh per batch: the checkpoint moves right after, and a read that
        # waited for it must find the documents.
        response = await self._bulk_client.bulk(operations=operations, refresh=True)
        if response.get("errors"):
            failures = [item["index"] for item in response["items"] if item["index"].get("error")]
            if failures:
                raise SearchProjectionError(f"{len(failures)} documents rejected, first: {failures[0]}")
        self._indexed.update(documents)

    # -- rebuild (projections.rebuild.Rebuildable) -------------------------------------------------

    def rebuild_copy(self, generation: str) -> Projection:
        return SearchProjection(
            self._client,
            self._prefix,
            name=f"{self.name}{COPY_SUFFIX}",
            index=index_name(self._prefix, generation),
        )

    async def promote(self, copy: Projection) -> None:
        assert isinstance(copy, SearchProjection) and copy.index is not None
        # The alias is about to point at the copy's index, which this cache never described.
        self._indexed.clear()
        await self._client.indices.refresh(index=copy.index)
        try:
            current = list((await self._client.indices.get_alias(name=self.alias)).body)
        except NotFoundError:
            current = []
        actions: list[dict[str, Any]] = [
            {"remove": {"index": old, "alias": self.alias}} for old in current if old != copy.index
        ]
        actions.append({"add": {"index": copy.index, "alias": self.alias}})
        await self._client.indices.update_aliases(actions=actions)
        for old in current:
            if old != copy.index:
                await self._client.indices.delete(index=old, ignore_unavailable=True)
        log.info("search index promoted", extra={"index": copy.index, "replaced": current})


def _product_id(stream_id: str) -> str:
    return stream_id.removeprefix("product-")
