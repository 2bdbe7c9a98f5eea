"""The typed services a gateway process hands to resolvers, routes and background jobs.

Built once by ``gateway.bootstrap.wiring.wire``; resolvers reach them through
the request context (``info.context.services``), never by looking a type up.
"""

from __future__ import annotations

from dataclasses import dataclass

from commands.checkout.settle import PaymentSettlement
from gateway.bootstrap.payments import ProcessPaymentProvider
from gateway.edge.read_model_versions import ReadModelVersions
from gateway.edge.search_cache import SearchAnswers
from gateway.edge.services import EdgeServices
from gateway.realtime.subscriptions import OrderUpdatesBroker
from queries.carts import CartQueries
from queries.inventory import InventoryQueries
from queries.orders import OrderQueries
from queries.pricing import PricingQueries
from queries.products import ProductService
from queries.projection_status import ProjectionStatusService
from queries.timeline import TimelineQueries


@dataclass(frozen=True)
class Services:
    products: ProductService
    carts: CartQueries
    inventory: InventoryQueries
    orders: OrderQueries
    timeline: TimelineQueries
    projection_status: ProjectionStatusService
    payments: ProcessPaymentProvider
    settlement: PaymentSettlement
    order_updates: OrderUpdatesBroker
    edge: EdgeServices
    pricing: PricingQueries
    # One per process: validators (HTTP caching) and kept search answers read the same versions.
    read_model_versions: ReadModelVersions
    product_search: SearchAnswers
