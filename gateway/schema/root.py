"""Query, Mutation and Subscription roots: each field delegates to its domain module."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from commands.domain.order import OrderStatus
from gateway.edge.context import Info
from gateway.schema import cart as cart_api
from gateway.schema import catalog as catalog_api
from gateway.schema import catalog_import as catalog_import_api
from gateway.schema import checkout as order_mutations_api
from gateway.schema import inventory as inventory_api
from gateway.schema import money as money_api
from gateway.schema import orders as orders_api
from gateway.schema import support as support_api
from gateway.schema.common import Node
from gateway.schema.ids import parse_global_id
from gateway.schema.scalars import Position


@strawberry.type
class Query:
    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        parsed = parse_global_id(str(id))
        if parsed is None:
            return None
        type_name, _ = parsed
        if type_name == "Product":
            return await catalog_api.resolve_product(info, id, None)
        if type_name == "ProductVariant":
            return await catalog_api.resolve_variant_by_id(info, id)
        if type_name == "Cart":
            return await cart_api.resolve_cart(info, id, None)
        if type_name == "Order":
            return await orders_api.resolve_order(info, id, None)
        return None

    @strawberry.field
    async def product(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        handle: str | None = None,
        consistent_with: Position | None = None,
    ) -> catalog_api.Product | None:
        await catalog_api.wait_for_search(info, consistent_with)
        return await catalog_api.resolve_product(info, id, handle)

    @strawberry.field
    async def variant(
        self, info: Info, sku: str, consistent_with: Position | None = None
    ) -> catalog_api.ProductVariant | None:
        await catalog_api.wait_for_search(info, consistent_with)
        return await catalog_api.resolve_variant(info, sku)

    @strawberry.field
    async def products(
        self,
        info: Info,
        query: str | None = None,
        filter: catalog_api.ProductFilter | None = None,
        sort: catalog_api.ProductSort | None = catalog_api.ProductSort.RELEVANCE,
        first: int | None = 20,
        after: str | None = None,
        consistent_with: Position | None = None,
    ) -> catalog_api.ProductSearchConnection:
        await catalog_api.wait_for_search(info, consistent_with)
        return await catalog_api.resolve_products(info, query, filter, sort, first, after)

    @strawberry.field
    async def cart(
        self,
        info: Info,
        id: strawberry.ID,
        consistent_with: Position | None = None,
    ) -> cart_api.Cart | None:
        return await cart_api.resolve_cart(info, id, consistent_with)

    @strawberry.field
    async def my_cart(
        self,
        info: Info,
        consistent_with: Position | None = None,
    ) -> cart_api.Cart | None:
        return await cart_api.resolve_my_cart(info, consistent_with)

    @strawberry.field
    async def order(
        self,
        info: Info,
        id: strawberry.ID,
        consistent_with: Position | None = None,
    ) -> orders_api.Order | None:
        return await orders_api.resolve_order(info, id, consistent_with)

    @strawberry.field
    async def orders(
        self,
        info: Info,
        customer_id: strawberry.ID | None = None,
        status: OrderStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
        consistent_with: Position | None = None,
    ) -> orders_api.OrderConnection:
        return await orders_api.resolve_orders(info, customer_id, status, first, after, consistent_with)

    @strawberry.field
    async def customer_timeline(
        self,
        info: Info,
        customer_id: strawberry.ID,
        kinds: list[support_api.TimelineEntryKind] | None = None,
        first: int | None = 50,
        after: str | None = None,
        consistent_with: Position | None = None,
    ) -> support_api.TimelineConnection:
        return await support_api.resolve_customer_timeline(
            info, customer_id, kinds, first, after, consistent_with
        )

    @strawberry.field
    async def inventory(
        self,
        info: Info,
        sku: str,
        consistent_with: Position | None = None,
    ) -> inventory_api.InventoryLevel | None:
        return await inventory_api.resolve_inventory(info, sku, consistent_with)

    @strawberry.field
    async def projections(self, info: Info) -> list[support_api.ProjectionStatus]:
        return await support_api.resolve_projections(info)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def cart_create(
        self, info: Info, input: cart_api.CartCreateInput | None = None
    ) -> cart_api.CartPayload:
        return await cart_api.resolve_cart_create(info, input)

    @strawberry.mutation
    async def cart_lines_add(
        self,
        info: Info,
        cart_id: strawberry.ID,
        lines: list[cart_api.CartLineInput],
        expected_version: int | None = None,
    ) -> cart_api.CartPayload:
        return await cart_api.resolve_cart_lines_add(info, cart_id, lines, expected_version)

    @strawberry.mutation
    async def cart_lines_update(
        self,
        info: Info,
        cart_id: strawberry.ID,
        lines: list[cart_api.CartLineUpdateInput],
        expected_version: int | None = None,
    ) -> cart_api.CartPayload:
        return await cart_api.resolve_cart_lines_update(info, cart_id, lines, expected_version)

    @strawberry.mutation
    async def cart_lines_remove(
        self,
        info: Info,
        cart_id: strawberry.ID,
        line_ids: list[strawberry.ID],
        expected_version: int | None = None,
    ) -> cart_api.CartPayload:
        return await cart_api.resolve_cart_lines_remove(info, cart_id, line_ids, expected_version)

    @strawberry.mutation
    async def cart_shipping_set(
        self,
        info: Info,
        cart_id: strawberry.ID,
        country_code: str,
        region: str | None = None,
        method_code: str | None = None,
        expected_version: int | None = None,
    ) -> cart_api.CartPayload:
        return await cart_api.resolve_cart_shipping_set(
            info, cart_id, country_code, region, method_code, expected_version
        )

    @strawberry.mutation
    async def cart_discount_code_apply(
        self, info: Info, cart_id: strawberry.ID, code: str, expected_version: int | None = None
    ) -> cart_api.CartPayload:
        return await cart_api.resolve_cart_discount_code_apply(info, cart_id, code, expected_version)

    @strawberry.mutation
    async def cart_discount_code_remove(
        self, info: Info, cart_id: strawberry.ID, expected_version: int | None = None
    ) -> cart_api.CartPayload:
        return await cart_api.resolve_cart_discount_code_remove(info, cart_id, expected_version)

    @strawberry.mutation
    async def cart_attach_customer(self, info: Info, cart_id: strawberry.ID) -> cart_api.CartPayload:
        return await cart_api.resolve_cart_attach_customer(info, cart_id)

    @strawberry.mutation
    async def checkout_complete(
        self, info: Info, input: order_mutations_api.CheckoutInput
    ) -> order_mutations_api.CheckoutPayload:
        return await order_mutations_api.resolve_checkout_complete(info, input)

    @strawberry.mutation
    async def order_cancel(
        self, info: Info, order_id: strawberry.ID, idempotency_key: str, reason: str | None = None
    ) -> order_mutations_api.OrderPayload:
        return await order_mutations_api.resolve_order_cancel(info, order_id, reason, idempotency_key)

    @strawberry.mutation
    async def order_request_fulfillment(
        self, info: Info, order_id: strawberry.ID, idempotency_key: str
    ) -> order_mutations_api.OrderPayload:
        return await order_mutations_api.resolve_order_request_fulfillment(info, order_id, idempotency_key)

    @strawberry.mutation
    async def order_mark_shipped(
        self, info: Info, order_id: strawberry.ID, idempotency_key: str, tracking_number: str | None = None
    ) -> order_mutations_api.OrderPayload:
        return await order_mutations_api.resolve_order_mark_shipped(
            info, order_id, tracking_number, idempotency_key
        )

    @strawberry.mutation
    async def order_mark_delivered(
        self, info: Info, order_id: strawberry.ID, idempotency_key: str
    ) -> order_mutations_api.OrderPayload:
        return await order_mutations_api.resolve_order_mark_delivered(info, order_id, idempotency_key)

    @strawberry.mutation
    async def order_refund(
        self, info: Info, order_id: strawberry.ID, idempotency_key: str, reason: str | None = None
    ) -> order_mutations_api.OrderPayload:
        return await order_mutations_api.resolve_order_refund(info, order_id, reason, idempotency_key)

    @strawberry.mutation
    async def product_upsert(
        self, info: Info, input: catalog_api.ProductUpsertInput
    ) -> catalog_api.ProductPayload:
        return await catalog_api.resolve_product_upsert(info, input)

    @strawberry.mutation
    async def catalog_import(
        self, info: Info, products: list[catalog_import_api.CatalogImportProductInput]
    ) -> catalog_import_api.CatalogImportPayload:
        return await catalog_import_api.resolve_catalog_import(info, products)

    @strawberry.mutation
    async def inventory_set(
        self, info: Info, sku: str, on_hand: int, idempotency_key: str
    ) -> inventory_api.InventoryPayload:
        return await inventory_api.resolve_inventory_set(info, sku, on_hand, idempotency_key)

    @strawberry.mutation
    async def inventory_adjust(
        self, info: Info, sku: str, delta: int, idempotency_key: str, reason: str | None = None
    ) -> inventory_api.InventoryPayload:
        return await inventory_api.resolve_inventory_adjust(info, sku, delta, reason, idempotency_key)

    @strawberry.mutation
    async def inventory_set_buckets(
        self, info: Info, sku: str, buckets: int, idempotency_key: str
    ) -> inventory_api.InventoryPayload:
        return await inventory_api.resolve_inventory_set_buckets(info, sku, buckets, idempotency_key)

    @strawberry.mutation
    async def shipping_method_define(
        self, info: Info, input: money_api.ShippingMethodInput
    ) -> money_api.MoneyConfigPayload:
        return await money_api.resolve_shipping_method_define(info, input)

    @strawberry.mutation
    async def tax_rate_set(self, info: Info, input: money_api.TaxRateInput) -> money_api.MoneyConfigPayload:
        return await money_api.resolve_tax_rate_set(info, input)

    @strawberry.mutation
    async def tax_policy_set(
        self, info: Info, input: money_api.TaxPolicyInput
    ) -> money_api.MoneyConfigPayload:
        return await money_api.resolve_tax_policy_set(info, input)

    @strawberry.mutation
    async def discount_code_define(
        self, info: Info, input: money_api.DiscountCodeInput
    ) -> money_api.MoneyConfigPayload:
        return await money_api.resolve_discount_code_define(info, input)

    @strawberry.mutation
    async def projection_rebuild(self, info: Info, name: str) -> support_api.ProjectionRebuildPayload:
        return await support_api.resolve_projection_rebuild(info, name)


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def order_updated(
        self, info: Info, order_id: strawberry.ID
    ) -> AsyncGenerator[orders_api.Order, None]:
        async for order in orders_api.subscribe_order_updated(info, order_id):
            yield order


def extra_types() -> list[type]:
    """Node implementations, so ``node(id)`` can return any of them."""
    return [catalog_api.Product, catalog_api.ProductVariant, cart_api.Cart, orders_api.Order]
