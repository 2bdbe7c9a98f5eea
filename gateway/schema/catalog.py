"""Catalog GraphQL types and resolvers (read side: the search read model)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum

import strawberry

from gateway.context import Info
from gateway.errors import not_implemented
from gateway.schema.common import Freshness, Money, Node, PageInfo, UserError
from gateway.schema.scalars import Position


@strawberry.type
class PriceRange:
    min: Money
    max: Money


@strawberry.type
class StockHint:
    in_stock: bool
    available: int | None
    freshness: Freshness


@strawberry.type
class ProductVariant(Node):
    id: strawberry.ID
    sku: str
    title: str
    price: Money

    @strawberry.field
    async def product(self, info: Info) -> Product:
        raise not_implemented("ProductVariant.product")

    @strawberry.field
    async def availability(self, info: Info) -> StockHint:
        raise not_implemented("ProductVariant.availability")


@strawberry.type
class Product(Node):
    id: strawberry.ID
    handle: str
    title: str
    description: str
    brand: str | None
    categories: list[str]
    variants: list[ProductVariant]
    price_range: PriceRange
    created_at: datetime
    updated_at: datetime


@strawberry.input
class ProductFilter:
    brands: list[str] | None = None
    categories: list[str] | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock_only: bool | None = None


@strawberry.enum
class ProductSort(Enum):
    RELEVANCE = "RELEVANCE"
    PRICE_ASC = "PRICE_ASC"
    PRICE_DESC = "PRICE_DESC"
    NEWEST = "NEWEST"
    TITLE_ASC = "TITLE_ASC"


@strawberry.type
class FacetValue:
    value: str
    count: int


@strawberry.type
class PriceBucket:
    from_: Decimal | None = strawberry.field(name="from")
    to: Decimal | None
    count: int


@strawberry.type
class ProductFacets:
    brands: list[FacetValue]
    categories: list[FacetValue]
    prices: list[PriceBucket]


@strawberry.type
class ProductEdge:
    cursor: str
    node: Product


@strawberry.type
class ProductSearchConnection:
    edges: list[ProductEdge]
    page_info: PageInfo
    total_count: int
    facets: ProductFacets
    freshness: Freshness


@strawberry.input
class ProductVariantInput:
    sku: str
    title: str
    price: Decimal


@strawberry.input
class ProductUpsertInput:
    handle: str
    title: str
    variants: list[ProductVariantInput]
    description: str | None = None
    brand: str | None = None
    categories: list[str] | None = None
    currency_code: str | None = None


@strawberry.type
class ProductPayload:
    product: Product | None
    position: Position | None  # type: ignore[valid-type]
    user_errors: list[UserError]


async def resolve_product(info: Info, id: strawberry.ID | None, handle: str | None) -> Product | None:
    raise not_implemented("product")


async def resolve_variant(info: Info, sku: str) -> ProductVariant | None:
    raise not_implemented("variant")


async def resolve_products(
    info: Info,
    query: str | None,
    filter: ProductFilter | None,
    sort: ProductSort | None,
    first: int | None,
    after: str | None,
) -> ProductSearchConnection:
    raise not_implemented("products")


async def resolve_product_upsert(info: Info, input: ProductUpsertInput) -> ProductPayload:
    raise not_implemented("productUpsert")


async def resolve_variant_by_id(info: Info, id: strawberry.ID) -> ProductVariant | None:
    raise not_implemented("node(ProductVariant)")
