"""Catalog GraphQL types and resolvers (read side: the search read model)."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TypeVar

import strawberry

from commands.errors import DomainError
from commands.messages.catalog import UpsertProduct, VariantSpec
from gateway.edge.context import Info
from gateway.edge.errors import bad_user_input
from gateway.schema.common import Freshness, Money, Node, PageInfo, UserError
from gateway.schema.ids import global_id, parse_global_id
from gateway.schema.list_sizes import bounded
from gateway.schema.loaders import catalog as loaders
from gateway.schema.scalars import Position, optional_position
from gateway.schema.selection import selected
from gateway.schema.stock import StockHint, stock_hint
from queries.freshness import StaleRead
from queries.products import InvalidSearch, ProductSearchPage, ProductView, SearchRequest, VariantView
from queries.products import ProductFacets as SearchFacets

T = TypeVar("T")
log = logging.getLogger(__name__)


@strawberry.type
class PriceRange:
    min: Money
    max: Money


@strawberry.type
class ProductVariant(Node):
    id: strawberry.ID
    sku: str
    title: str
    price: Money
    product_id: strawberry.Private[str]
    parent: strawberry.Private[Product | None]
    hint: strawberry.Private[VariantView]

    @strawberry.field
    async def product(self, info: Info) -> Product:
        if self.parent is not None:
            return self.parent
        view = await loaders.by_id(info).load(self.product_id)
        if view is None:
            raise LookupError(f"product {self.product_id} of variant {self.sku} is not in the read model")
        return Product.of(view)

    @strawberry.field
    async def availability(self, info: Info) -> StockHint:
        return await stock_hint(info, self.sku)


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

    @classmethod
    def of(cls, view: ProductView) -> Product:
        product = cls(
            id=strawberry.ID(global_id("Product", view.id)),
            handle=view.handle,
            title=view.title,
            description=view.description,
            brand=view.brand,
            categories=list(view.categories),
            variants=[],
            price_range=PriceRange(
                min=Money(amount=view.price_min, currency_code=view.currency),
                max=Money(amount=view.price_max, currency_code=view.currency),
            ),
            created_at=view.created_at,
            updated_at=view.updated_at,
        )
        product.variants = [
            ProductVariant(
                id=strawberry.ID(global_id("ProductVariant", v.sku)),
                sku=v.sku,
                title=v.title,
                price=Money(amount=v.price, currency_code=view.currency),
                product_id=view.id,
                parent=product,
                hint=v,
            )
            for v in bounded("Product", "variants", view.variants)
        ]
        return product


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
    # Asked of the engine only when the query selects them (``resolve_products``).
    _total: strawberry.Private[int | None]
    _facets: strawberry.Private[ProductFacets | None]
    total_count: int = strawberry.field(resolver=lambda root: _asked(root._total, "totalCount"))
    facets: ProductFacets = strawberry.field(resolver=lambda root: _asked(root._facets, "facets"))
    freshness: Freshness


def _asked(value: T | None, name: str) -> T:
    if value is None:
        raise RuntimeError(f"{name} resolved on a search made without it")
    return value


@strawberry.input
class ProductVariantInput:
    sku: str
    title: str
    price: Decimal
    tax_category: str = strawberry.field(
        default="standard", description="standard, reduced or zero: which tax rate applies."
    )


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
    position: Position | None
    user_errors: list[UserError]


async def wait_for_search(info: Info, position: int | None) -> None:
    """Read-your-writes for catalog reads: wait until the search model has applied ``position``."""
    if position is not None:
        container = info.context.container
        await container.freshness.wait_for("search", position, container.settings.read_wait_seconds)


async def resolve_product(info: Info, id: strawberry.ID | None, handle: str | None) -> Product | None:
    if (id is None) == (handle is None):
        raise bad_user_input("give exactly one of id and handle", argument="id" if id is None else "handle")
    if id is not None:
        parsed = parse_global_id(str(id), "Product")
        view = None if parsed is None else await loaders.by_id(info).load(parsed[1])
    else:
        view = await loaders.by_handle(info).load(handle)
    return None if view is None else Product.of(view)


async def variant_by_sku(info: Info, sku: str) -> ProductVariant | None:
    """The active variant with this SKU (None when unknown or withdrawn), batched per request."""
    view = await loaders.by_sku(info).load(sku)
    if view is None:
        return None
    return next((v for v in Product.of(view).variants if v.sku == sku), None)


async def resolve_variant(info: Info, sku: str) -> ProductVariant | None:
    return await variant_by_sku(info, sku)


async def resolve_variant_by_id(info: Info, id: strawberry.ID) -> ProductVariant | None:
    parsed = parse_global_id(str(id), "ProductVariant")
    return None if parsed is None else await variant_by_sku(info, parsed[1])


async def resolve_products(
    info: Info,
    query: str | None,
    filter: ProductFilter | None,
    sort: ProductSort | None,
    first: int | None,
    after: str | None,
) -> ProductSearchConnection:
    asked = selected(info, ("facets", "totalCount"))
    request = SearchRequest(
        query=query,
        brands=tuple(filter.brands or ()) if filter else (),
        categories=tuple(filter.categories or ()) if filter else (),
        min_price=filter.min_price if filter else None,
        max_price=filter.max_price if filter else None,
        in_stock_only=bool(filter and filter.in_stock_only),
        sort=(sort or ProductSort.RELEVANCE).value,
        first=20 if first is None else first,
        after=after,
        with_facets="facets" in asked,
        with_total="totalCount" in asked,
    )
    # Measured before the search, so the reported position is one the answer has reached.
    freshness = await loaders.freshness(info)
    try:
        page = await loaders.product_search(info).search(request)
    except InvalidSearch as exc:
        raise bad_user_input(str(exc), argument=exc.argument) from None
    loaders.prime(info, (hit.product for hit in page.hits))
    return _connection(page, Freshness.of(freshness), after is not None)


def _connection(
    page: ProductSearchPage, freshness: Freshness, after_a_cursor: bool
) -> ProductSearchConnection:
    edges = [ProductEdge(cursor=hit.cursor, node=Product.of(hit.product)) for hit in page.hits]
    return ProductSearchConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            # As the other connections: a page after a cursor has the cursor's page before it.
            has_previous_page=after_a_cursor,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        _total=page.total,
        _facets=None if page.facets is None else _facets(page.facets),
        freshness=freshness,
    )


def _facets(facets: SearchFacets) -> ProductFacets:
    return ProductFacets(
        brands=[FacetValue(value=v, count=c) for v, c in bounded("ProductFacets", "brands", facets.brands)],
        categories=[
            FacetValue(value=v, count=c) for v, c in bounded("ProductFacets", "categories", facets.categories)
        ],
        prices=[
            PriceBucket(from_=b.lower, to=b.upper, count=b.count)
            for b in bounded("ProductFacets", "prices", facets.prices)
        ],
    )


async def resolve_product_upsert(info: Info, input: ProductUpsertInput) -> ProductPayload:
    info.context.principal.require("admin")
    command = UpsertProduct(
        handle=input.handle,
        title=input.title,
        variants=tuple(VariantSpec(v.sku, v.title, v.price, v.tax_category) for v in input.variants),
        description=input.description,
        brand=input.brand,
        categories=None if input.categories is None else tuple(input.categories),
        currency_code=input.currency_code,
    )
    container = info.context.container
    try:
        result = await container.bus.dispatch(command, info.context.metadata())
    except DomainError as exc:
        return ProductPayload(product=None, position=None, user_errors=UserError.from_domain(exc, ["input"]))
    if result.read_position is not None:
        try:
            await container.freshness.wait_for(
                loaders.SEARCH_PROJECTION, result.read_position, container.settings.read_wait_seconds
            )
        except StaleRead:
            # The write is committed; the payload then shows the read model as it is.
            log.warning("product read model lags behind an upsert", extra={"product": result.product_id})
    product_loader = loaders.by_id(info)
    product_loader.clear(result.product_id)
    view = await product_loader.load(result.product_id)
    return ProductPayload(
        product=None if view is None else Product.of(view),
        position=optional_position(result.position),
        user_errors=[],
    )
