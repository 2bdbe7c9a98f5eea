"""Search answers kept per version of the search read model: a repeated listing costs no engine call.

Storefronts ask for the same few listings (a category, a brand filter, the first page of a
query) far more often than the catalog changes, and the engine's answer is most of such a
request's time. An answer is kept under every field of its ``SearchRequest`` (text, filters,
sort, page size, cursor, and whether it carries facets and a total) and is valid while the
search model's version is the one it was fetched under: ``ReadModelVersions``, the last ledger
event that changed a document (so cart writes, orders and purchases that empty no stock bucket
do not count), and how many times the model may have been swapped for a rebuilt copy (a
rebuild's control notifications say so).

Why a kept answer is never older than the freshness reported with it: the version is read
before the engine is asked, and the engine holds at least what the checkpoint behind that
version announced (the projector writes and refreshes the index before its checkpoint
commits). Callers measure the freshness they report *before* calling ``search``, and the
measurement tells the watcher the stored checkpoint, so the version looked up here is never
behind it. Between a projector's commit and its announcement reaching this process (a
notification, or the versions' resync within a second) an engine asked directly may already
be newer, as it may be newer than any announced checkpoint.

A version change drops every kept answer at once (they are all dead). ``MAX_AGE_SECONDS`` bounds
what nothing announces (an index edited by hand). Concurrent misses of one search under one
version share one engine call.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields
from decimal import Decimal

from prometheus_client import Counter

from gateway.edge.read_model_versions import ReadModelVersions
from projections.search.projector import NAME as SEARCH
from queries.freshness import TxPosition
from queries.products import ProductSearchPage, ProductService, SearchRequest

MAX_AGE_SECONDS = 60.0

SEARCH_ANSWERS = Counter(
    "commerce_search_answers_total", "Product searches answered, by where the answer came from", ["source"]
)


_REQUEST_FIELDS = tuple(spec.name for spec in fields(SearchRequest))
# The model's version and how many times it may have been replaced (a rebuild's swap).
_Version = tuple[TxPosition, int]
_Key = tuple[Hashable, ...]


def request_key(request: SearchRequest) -> _Key:
    """Every field of the request, decimals by their text (a signalling NaN, refused by the
    search, cannot be hashed; ``10`` and ``10.00`` are then two entries of one answer)."""
    return tuple(
        str(value) if isinstance(value, Decimal) else value
        for value in (getattr(request, name) for name in _REQUEST_FIELDS)
    )


@dataclass(frozen=True)
class _Kept:
    page: ProductSearchPage
    fetched_at: float


class SearchAnswers:
    """``ProductService.search`` with answers kept per read-model version (``size`` 0: none kept)."""

    def __init__(
        self,
        products: ProductService,
        versions: ReadModelVersions,
        *,
        size: int,
        max_age_seconds: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._products = products
        self._versions = versions
        self._size = size
        self._max_age = max_age_seconds
        self._clock = clock
        self._version: _Version | None = None
        self._kept: OrderedDict[_Key, _Kept] = OrderedDict()
        self._from_cache = SEARCH_ANSWERS.labels("cache")
        self._from_engine = SEARCH_ANSWERS.labels("engine")
        self._shared = SEARCH_ANSWERS.labels("shared")
        self._fetching: dict[tuple[_Version, _Key], asyncio.Future[ProductSearchPage]] = {}

    def __len__(self) -> int:
        return len(self._kept)

    async def search(self, request: SearchRequest) -> ProductSearchPage:
        if self._size == 0:
            self._from_engine.inc()
            return await self._products.search(request)
        version = (
            (await self._versions.current((SEARCH,)))[SEARCH],
            self._versions.generation(SEARCH),
        )
        if version != self._version:
            self._kept.clear()
            self._version = version
        key = request_key(request)
        kept = self._kept.get(key)
        if kept is not None and self._clock() - kept.fetched_at < self._max_age:
            self._kept.move_to_end(key)
            self._from_cache.inc()
            return kept.page
        # Requests that miss together on one search under one version share one engine call
        # (a popular listing right after a catalog change); shielded, so a waiter that goes
        # away does not cancel it for the others.
        flight = (version, key)
        fetching = self._fetching.get(flight)
        if fetching is None:
            fetching = asyncio.ensure_future(self._fetch(request, version, key))
            self._fetching[flight] = fetching
            fetching.add_done_callback(lambda done: self._landed(flight, done))
        else:
            self._shared.inc()
        return await asyncio.shield(fetching)

    async def _fetch(self, request: SearchRequest, version: _Version, key: _Key) -> ProductSearchPage:
        fetched_at = self._clock()
        page = await self._products.search(request)
        self._from_engine.inc()
        # Another request may have seen the model move while the engine answered: this answer
        # belongs to the version read before it was asked, so it is kept only under that one.
        if self._version == version:
            self._kept[key] = _Kept(page, fetched_at)
            self._kept.move_to_end(key)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return page

    def _landed(
        self,
        flight: tuple[_Version, _Key],
        done: asyncio.Future[ProductSearchPage],
    ) -> None:
        self._fetching.pop(flight, None)
        if not done.cancelled():
            done.exception()  # retrieved here too: every waiter may have gone away
