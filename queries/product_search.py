"""Builds the product search request: text query, filters, facets, sort and cursors.

Cursors are ``search_after`` values (never ``from`` offsets) bound to the
search they came from by a fingerprint of the query, filters and sort.

Relevance paging: the embedded engine (osmem) compares ``search_after`` on
``_score`` against its internal float64 scores while it reports float32
ones, so a page boundary inside a run of equal scores repeats or skips hits.
Relevance is therefore scored as ``floor(score * 1000)`` (script_score): whole
numbers below 2^24 are exact in float32 and float64 alike, so ties compare
equal on osmem and on Elasticsearch, and the ``product_id`` tiebreak decides.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from queries import cursors

MAX_FIRST = 100
MAX_QUERY_LENGTH = 200
TIEBREAK = {"product_id": "asc"}
SORTS = ("RELEVANCE", "PRICE_ASC", "PRICE_DESC", "NEWEST", "TITLE_ASC")
TEXT_FIELDS = ["title^4", "brand.text^2", "categories.text^1.5", "description"]
SCORE_SCALE = 1000
MAX_SCORE = 2**24 - 1

# (key, inclusive lower bound, exclusive upper bound); None = unbounded.
PRICE_BUCKETS: list[tuple[str, Decimal | None, Decimal | None]] = [
    ("under-10", None, Decimal(10)),
    ("10-25", Decimal(10), Decimal(25)),
    ("25-50", Decimal(25), Decimal(50)),
    ("50-100", Decimal(50), Decimal(100)),
    ("100-250", Decimal(100), Decimal(250)),
    ("250-500", Decimal(250), Decimal(500)),
    ("500-up", Decimal(500), None),
]
FACET_SIZE = 100


class InvalidSearch(ValueError):
    """The search arguments cannot be served (bad cursor, page size, price range); ``argument``
    names the argument at fault."""

    def __init__(self, message: str, argument: str) -> None:
        super().__init__(message)
        self.argument = argument


@dataclass(frozen=True)
class SearchRequest:
    query: str | None = None
    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock_only: bool = False
    sort: str = "RELEVANCE"
    first: int = 20
    after: str | None = None
    # What the answer carries besides its page: an engine computes facets and an exact total
    # for every match, most of a small page's time; a next page's request rarely shows either.
    with_facets: bool = True
    with_total: bool = True

    @property
    def text(self) -> str:
        return " ".join((self.query or "").split())


@dataclass(frozen=True)
class SearchPlan:
    body: dict[str, Any]
    fingerprint: str
    sort: list[dict[str, Any]] = field(default_factory=list)


def build_search(request: SearchRequest) -> SearchPlan:
    _validate(request)
    fingerprint = _fingerprint(request)
    sort = _sort(request)
    body: dict[str, Any] = {
        "query": _query(request),
        "sort": sort,
        "size": request.first + 1,
        "track_total_hits": request.with_total,
    }
    if request.with_facets:
        body["aggs"] = _aggregations()
    if request.after is not None:
        after = decode_cursor(request.after, fingerprint)
        if len(after) != len(sort):
            raise InvalidSearch("cursor does not match this search", "after")
        body["search_after"] = after
    return SearchPlan(body, fingerprint, sort)


def _validate(request: SearchRequest) -> None:
    if not 1 <= request.first <= MAX_FIRST:
        raise InvalidSearch(f"first must be between 1 and {MAX_FIRST}", "first")
    if request.sort not in SORTS:
        raise InvalidSearch(f"unknown sort {request.sort}", "sort")
    if len(request.text) > MAX_QUERY_LENGTH:
        raise InvalidSearch(f"query must be at most {MAX_QUERY_LENGTH} characters", "query")
    for bound in (request.min_price, request.max_price):
        if bound is not None and (not bound.is_finite() or bound < 0):
            raise InvalidSearch("price bounds must be non-negative numbers", "filter")
    if (
        request.min_price is not None
        and request.max_price is not None
        and request.min_price > request.max_price
    ):
        raise InvalidSearch("minPrice must not exceed maxPrice", "filter")


def _text_query(text: str) -> dict[str, Any]:
    fuzzy = {"fuzziness": "AUTO", "prefix_length": 1}
    return {
        "bool": {
            # Every word must appear somewhere in the product (typo tolerant)...
            "must": [{"match": {"search_text": {"query": text, "operator": "and", **fuzzy}}}],
            # ...and where it appears decides the score: title over brand over description.
            "should": [
                {"multi_match": {"query": text, "fields": TEXT_FIELDS, "type": "best_fields", **fuzzy}},
                {"match_phrase": {"title": {"query": text, "boost": 2}}},
            ],
        }
    }


def _filters(request: SearchRequest) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if request.brands:
        filters.append({"terms": {"brand": list(request.brands)}})
    if request.categories:
        filters.append({"terms": {"categories": list(request.categories)}})
    if request.min_price is not None or request.max_price is not None:
        bounds: dict[str, float] = {}
        if request.min_price is not None:
            bounds["gte"] = float(request.min_price)
        if request.max_price is not None:
            bounds["lte"] = float(request.max_price)
        # Any single variant in range qualifies the product.
        filters.append({"nested": {"path": "variants", "query": {"range": {"variants.price": bounds}}}})
    if request.in_stock_only:
        filters.append({"term": {"in_stock": True}})
    return filters


def _query(request: SearchRequest) -> dict[str, Any]:
    text = request.text
    query: dict[str, Any] = {"bool": {"filter": _filters(request)}}
    if not text:
        return query
    query["bool"]["must"] = [_text_query(text)]
    if request.sort != "RELEVANCE":
        return query
    script = f"Math.min(Math.floor(_score * {SCORE_SCALE}), {MAX_SCORE})"
    return {"script_score": {"query": query, "script": {"source": script}}}


def _sort(request: SearchRequest) -> list[dict[str, Any]]:
    match request.sort:
        case "RELEVANCE" if request.text:
            primary: dict[str, Any] = {"_score": "desc"}
        case "RELEVANCE" | "NEWEST":
            primary = {"created_at": "desc"}
        case "PRICE_ASC":
            primary = {"price_min": "asc"}
        case "PRICE_DESC":
            primary = {"price_max": "desc"}
        case _:
            primary = {"title_sort": "asc"}
    return [primary, TIEBREAK]


def _aggregations() -> dict[str, Any]:
    ranges: list[dict[str, Any]] = []
    for key, lower, upper in PRICE_BUCKETS:
        bucket: dict[str, Any] = {"key": key}
        if lower is not None:
            bucket["from"] = float(lower)
        if upper is not None:
            bucket["to"] = float(upper)
        ranges.append(bucket)
    return {
        "brands": {"terms": {"field": "brand", "size": FACET_SIZE}},
        "categories": {"terms": {"field": "categories", "size": FACET_SIZE}},
        # A product counts in every bucket one of its variants is priced in,
        # which is what the price filter matches.
        "prices": {
            "nested": {"path": "variants"},
            "aggs": {
                "ranges": {
                    "range": {"field": "variants.price", "ranges": ranges},
                    "aggs": {"products": {"reverse_nested": {}}},
                }
            },
        },
    }


def _fingerprint(request: SearchRequest) -> str:
    identity = [
        request.text.casefold(),
        sorted(request.brands),
        sorted(request.categories),
        _plain(request.min_price),
        _plain(request.max_price),
        request.in_stock_only,
        request.sort,
    ]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def _plain(bound: Decimal | None) -> str | None:
    """One spelling per value (``10``, ``10.0`` and ``10.00`` are one filter, so one search)."""
    if bound is None:
        return None
    if bound == 0:
        return "0"  # -0 too
    normal = bound.normalize()
    # Plain digits for any price a person writes; a value only an exponent can write (1E-999999)
    # keeps it, rather than spelling out a million zeros on the event loop.
    exponent = normal.as_tuple().exponent
    return format(normal, "f") if isinstance(exponent, int) and exponent >= -28 else str(normal)


def encode_cursor(fingerprint: str, sort_values: list[Any]) -> str:
    return cursors.encode({"f": fingerprint, "a": sort_values})


def decode_cursor(cursor: str, fingerprint: str) -> list[Any]:
    try:
        decoded = cursors.decode(cursor)
    except cursors.MalformedCursor:
        raise InvalidSearch("invalid cursor", "after") from None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("a"), list):
        raise InvalidSearch("invalid cursor", "after")
    if decoded.get("f") != fingerprint:
        raise InvalidSearch("cursor belongs to a different search (query, filter or sort changed)", "after")
    values: list[Any] = decoded["a"]
    return values
