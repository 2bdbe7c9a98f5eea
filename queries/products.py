"""Product read service over the search read model (the ``<prefix>products`` alias).

Reads only; freshness is the gateway's business (``FreshnessService``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError

from queries.product_search import PRICE_BUCKETS, InvalidSearch, SearchRequest, build_search, encode_cursor

__all__ = [
    "InvalidSearch",
    "PriceBucketCount",
    "ProductFacets",
    "ProductHit",
    "ProductSearchPage",
    "ProductService",
    "ProductView",
    "SearchRequest",
    "VariantView",
]


@dataclass(frozen=True)
class VariantView:
    sku: str
    title: str
    price: Decimal
    # As search last filtered on it; the exact numbers are in the inventory read model.
    in_stock: bool


@dataclass(frozen=True)
class ProductView:
    id: str
    handle: str
    title: str
    description: str
    brand: str | None
    categories: tuple[str, ...]
    currency: str
    variants: tuple[VariantView, ...]
    in_stock: bool
    created_at: datetime
    updated_at: datetime

    @property
    def price_min(self) -> Decimal:
        return min((v.price for v in self.variants), default=Decimal(0))

    @property
    def price_max(self) -> Decimal:
        return max((v.price for v in self.variants), default=Decimal(0))

    def variant(self, sku: str) -> VariantView | None:
        return next((v for v in self.variants if v.sku == sku), None)


@dataclass(frozen=True)
class PriceBucketCount:
    lower: Decimal | None
    upper: Decimal | None
    count: int


@dataclass(frozen=True)
class ProductFacets:
    brands: list[tuple[str, int]]
    categories: list[tuple[str, int]]
    prices: list[PriceBucketCount]


@dataclass(frozen=True)
class ProductHit:
    product: ProductView
    cursor: str


@dataclass(frozen=True)
class ProductSearchPage:
    hits: list[ProductHit]
    # None when the request did not ask for them (``with_total``, ``with_facets``).
    total: int | None
    has_next_page: bool
    facets: ProductFacets | None


class ProductService:
    def __init__(self, client: AsyncElasticsearch, alias: str) -> None:
        self._client = client
        self.alias = alias

    async def search(self, request: SearchRequest) -> ProductSearchPage:
        """One search call: the page (search_after), the exact total and the facets."""
        plan = build_search(request)
        response = await self._search(plan.body)
        if response is None:
            return ProductSearchPage(
                hits=[],
                total=0 if request.with_total else None,
                has_next_page=False,
                facets=_no_facets() if request.with_facets else None,
            )
        raw_hits = response["hits"]["hits"]
        page = raw_hits[: request.first]
        hits = [
            ProductHit(_product(hit["_source"]), encode_cursor(plan.fingerprint, hit["sort"])) for hit in page
        ]
        return ProductSearchPage(
            hits=hits,
            total=int(response["hits"]["total"]["value"]) if request.with_total else None,
            has_next_page=len(raw_hits) > request.first,
            facets=_facets(response["aggregations"]) if request.with_facets else None,
        )

    async def by_ids(self, ids: Sequence[str]) -> dict[str, ProductView]:
        if not ids:
            return {}
        response = await self._client.mget(index=self.alias, ids=list(dict.fromkeys(ids)))
        return {doc["_id"]: _product(doc["_source"]) for doc in response["docs"] if doc.get("found")}

    async def by_handles(self, handles: Sequence[str]) -> dict[str, ProductView]:
        products = await self._terms("handle", handles)
        return {p.handle: p for p in products}

    async def by_skus(self, skus: Sequence[str]) -> dict[str, ProductView]:
        """Products owning each active SKU, keyed by SKU (withdrawn SKUs are absent)."""
        wanted = set(skus)
        return {v.sku: p for p in await self._terms("skus", skus) for v in p.variants if v.sku in wanted}

    async def _terms(self, field: str, values: Sequence[str]) -> list[ProductView]:
        unique = list(dict.fromkeys(values))
        if not unique:
            return []
        response = await self._search(
            {"query": {"terms": {field: unique}}, "size": len(unique), "track_total_hits": False}
        )
        if response is None:
            return []
        return [_product(hit["_source"]) for hit in response["hits"]["hits"]]

    async def _search(self, body: dict[str, Any]) -> Any:
        """The engine's answer, or None while the read model has no index: its projector creates
        the index when it first starts, and a reader served before that sees an empty model (its
        freshness says how far behind it is), not an error."""
        try:
            return await self._client.search(index=self.alias, **body)
        except NotFoundError as exc:
            if exc.error != "index_not_found_exception":
                raise
            return None


def _product(source: dict[str, Any]) -> ProductView:
    return ProductView(
        id=source["product_id"],
        handle=source["handle"],
        title=source["title"],
        description=source.get("description") or "",
        brand=source.get("brand"),
        categories=tuple(source.get("categories") or ()),
        currency=source["currency"],
        variants=tuple(
            VariantView(
                sku=v["sku"],
                title=v["title"],
                price=Decimal(v["amount"]),
                in_stock=bool(v.get("in_stock", True)),
            )
            for v in source.get("variants") or ()
        ),
        in_stock=bool(source.get("in_stock", True)),
        created_at=datetime.fromisoformat(source["created_at"]),
        updated_at=datetime.fromisoformat(source["updated_at"]),
    )


def _facets(aggregations: dict[str, Any]) -> ProductFacets:
    def terms(name: str) -> list[tuple[str, int]]:
        return [(str(b["key"]), int(b["doc_count"])) for b in aggregations[name]["buckets"]]

    buckets = aggregations["prices"]["ranges"]["buckets"]
    by_key = {b["key"]: int(b["products"]["doc_count"]) for b in buckets}
    return ProductFacets(
        brands=terms("brands"),
        categories=terms("categories"),
        prices=[PriceBucketCount(lower, upper, by_key.get(key, 0)) for key, lower, upper in PRICE_BUCKETS],
    )


def _no_facets() -> ProductFacets:
    """The facets of a model with no index yet (``ProductService._search``): every count zero."""
    return ProductFacets([], [], [PriceBucketCount(lower, upper, 0) for _, lower, upper in PRICE_BUCKETS])
