"""Product search against the real engine: relevance, filters, facets, sorts, cursor paging.

Expected results are brute-forced from the seeded commands themselves.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from decimal import Decimal

import pytest

from commands.messages.catalog import UpsertProduct
from projections.search.mapping import sort_key
from queries.product_search import PRICE_BUCKETS
from queries.products import InvalidSearch, ProductView, SearchRequest
from tests.support.catalog import SeededCatalog


async def _all(catalog: SeededCatalog, request: SearchRequest) -> tuple[list[ProductView], int]:
    """Every hit, page by page through cursors."""
    hits: list[ProductView] = []
    after = None
    while True:
        page = await catalog.service.search(dataclasses.replace(request, after=after))
        hits += [h.product for h in page.hits]
        if not page.has_next_page:
            return hits, page.total
        after = page.hits[-1].cursor


def _prices(command: UpsertProduct) -> list[Decimal]:
    return [v.price for v in command.variants]


def _matches(command: UpsertProduct, request: SearchRequest) -> bool:
    if request.brands and command.brand not in request.brands:
        return False
    if request.categories and not set(command.categories or ()) & set(request.categories):
        return False
    low, high = request.min_price, request.max_price
    return (low is None and high is None) or any(
        (low is None or p >= low) and (high is None or p <= high) for p in _prices(command)
    )


FILTERS = [
    SearchRequest(),
    SearchRequest(brands=("Northwind", "Lumen")),
    SearchRequest(categories=("Jackets", "Sale")),
    SearchRequest(min_price=Decimal("25"), max_price=Decimal("99.99")),
    SearchRequest(min_price=Decimal("500")),
    SearchRequest(
        brands=("Contoso", "Juniper", "Kestrel"), categories=("Outdoor",), max_price=Decimal("300")
    ),
    SearchRequest(in_stock_only=True, categories=("Coffee",)),
]


@pytest.mark.parametrize("request_", FILTERS, ids=lambda r: repr(r)[14:70])
async def test_filters_and_facets_equal_brute_force(seeded: SeededCatalog, request_: SearchRequest) -> None:
    expected = [c for c in seeded.commands if _matches(c, request_)]
    found, total = await _all(seeded, dataclasses.replace(request_, first=100))
    assert total == len(expected) == len(found)
    assert sorted(p.handle for p in found) == sorted(c.handle for c in expected)

    facets = (await seeded.service.search(dataclasses.replace(request_, first=1))).facets
    assert dict(facets.brands) == Counter(c.brand for c in expected)
    assert dict(facets.categories) == Counter(cat for c in expected for cat in c.categories or ())
    for bucket, (_, lower, upper) in zip(facets.prices, PRICE_BUCKETS, strict=True):
        in_bucket = [
            c for c in expected
            if any((lower is None or p >= lower) and (upper is None or p < upper) for p in _prices(c))
        ]  # fmt: skip
        assert (bucket.lower, bucket.upper, bucket.count) == (lower, upper, len(in_bucket))


SORTS = {
    "PRICE_ASC": lambda p: (p.price_min, p.id),
    "PRICE_DESC": lambda p: (-p.price_max, p.id),
    # Elasticsearch dates hold milliseconds; within one millisecond the id decides.
    "NEWEST": lambda p: (-(p.created_at.timestamp() * 1000 // 1), p.id),
    "TITLE_ASC": lambda p: (sort_key(p.title), p.id),
}


@pytest.mark.parametrize("sort", [*SORTS, "RELEVANCE"])
async def test_sorts_page_through_every_hit_exactly_once(seeded: SeededCatalog, sort: str) -> None:
    request = SearchRequest(query="jacket" if sort == "RELEVANCE" else None, sort=sort, first=7)
    found, total = await _all(seeded, request)
    assert len(found) == total and len({p.id for p in found}) == total
    if sort == "RELEVANCE":
        assert total == sum("Jacket" in c.title or "jacket" in (c.description or "") for c in seeded.commands)
    else:
        assert total == len(seeded.commands)
        assert [p.id for p in found] == [p.id for p in sorted(found, key=SORTS[sort])]


async def test_relevance_title_beats_description_and_typos_still_match(seeded: SeededCatalog) -> None:
    page = await seeded.service.search(SearchRequest(query="quokka"))
    assert [h.product.handle for h in page.hits] == ["quokka-explorer-lamp", "plain-desk-lamp"]
    typo = await seeded.service.search(SearchRequest(query="quoka explorer"))
    assert typo.hits[0].product.handle == "quokka-explorer-lamp"
    # Brand outweighs description: every Lumen product ranks above the one that only mentions it.
    by_brand = await seeded.service.search(SearchRequest(query="lumen", first=100))
    handles = [h.product.handle for h in by_brand.hits]
    assert handles[-1] == "linen-lamp-shade"
    assert len(handles) > 3 and all(h.product.brand == "Lumen" for h in by_brand.hits[:-1])


async def test_relevance_ties_page_cleanly(seeded: SeededCatalog) -> None:
    """Many identical scores straddle page boundaries (the embedded engine's float32 trap)."""
    found, total = await _all(seeded, SearchRequest(query="lumen", first=3))
    assert total > 6 and len({p.id for p in found}) == len(found) == total


@pytest.mark.parametrize(
    "request_",
    [
        SearchRequest(first=0),
        SearchRequest(first=101),
        SearchRequest(after="not-a-cursor"),
        SearchRequest(min_price=Decimal(5), max_price=Decimal(1)),
    ],
)
async def test_invalid_requests_are_refused(seeded: SeededCatalog, request_: SearchRequest) -> None:
    with pytest.raises(InvalidSearch):
        await seeded.service.search(request_)


async def test_cursor_from_another_search_is_refused(seeded: SeededCatalog) -> None:
    page = await seeded.service.search(SearchRequest(sort="PRICE_ASC", first=2))
    with pytest.raises(InvalidSearch):
        await seeded.service.search(SearchRequest(sort="NEWEST", after=page.hits[-1].cursor))
