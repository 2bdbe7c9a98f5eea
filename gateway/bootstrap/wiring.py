"""Registers each domain's command handlers, projections and services on a container.

Both process roots (``serve`` and ``project``) and the tests call ``wire``, so
they all run the same handlers and read models.
"""

from __future__ import annotations

from datetime import timedelta

from commands.checkout.saga import CheckoutSaga
from commands.checkout.settle import PaymentSettlement
from commands.handlers import cart as cart_handlers
from commands.handlers import inventory as inventory_handlers
from commands.handlers import money as money_handlers
from commands.handlers.catalog import upsert_product
from commands.handlers.orders import OrderHandlers
from commands.inventory.row_gate import StockRowGate
from commands.messages.catalog import UpsertProduct
from gateway.bootstrap.container import Container
from gateway.bootstrap.payments import ProcessPaymentProvider
from gateway.bootstrap.services import Services
from gateway.edge.read_model_versions import ReadModelVersions
from gateway.edge.search_cache import SearchAnswers
from gateway.edge.services import EdgeServices
from gateway.realtime.status_relay import StatusRelay
from gateway.realtime.subscriptions import OrderUpdatesBroker
from projections.carts import CartsProjection
from projections.inventory import InventoryProjection
from projections.orders import OrdersProjection
from projections.pricing import PricingProjection
from projections.runner import RunnerConfig
from projections.search.projector import SearchProjection, alias_name
from projections.timeline.projector import TimelineProjection
from queries.carts import CartQueries
from queries.inventory import InventoryQueries
from queries.orders import OrderQueries
from queries.pricing import PricingQueries
from queries.products import ProductService
from queries.projection_status import ProjectionStatusService
from queries.timeline import TimelineQueries


def wire(container: Container, runner_config: RunnerConfig | None = None) -> Services:
    settings = container.settings
    bus, engine = container.bus, container.engine
    prefix = settings.index_prefix

    bus.register(UpsertProduct, upsert_product)
    cart_handlers.register(bus)
    inventory_handlers.register(bus)
    money_handlers.register(bus)

    payments = ProcessPaymentProvider(settings)
    container.on_close(payments.aclose)
    lease = timedelta(seconds=settings.reservation_lease_seconds)
    settlement = PaymentSettlement(container.connections, payments, lease=lease)
    timeout = settings.payment_timeout_seconds
    gate = StockRowGate(settings.stock_row_contenders)
    CheckoutSaga(settlement, reservation_lease=lease, row_gate=gate).register(
        bus, payment_timeout_seconds=timeout
    )
    OrderHandlers(settlement).register(bus, payment_timeout_seconds=timeout)

    broker = OrderUpdatesBroker(container.redis, settings.redis_prefix)
    container.on_close(broker.close)
    relay = StatusRelay(container.watcher, broker)
    container.on_close(relay.close)

    container.add_projections(
        [
            SearchProjection(container.search, prefix),
            CartsProjection(container.mongo),
            InventoryProjection(engine),
            OrdersProjection(engine, on_status_changed=relay.notice),
            TimelineProjection(engine),
            PricingProjection(engine),
        ],
        runner_config,
    )
    products = ProductService(container.search, alias_name(prefix))
    reads = container.reads
    versions = ReadModelVersions(reads, container.watcher)
    services = Services(
        products=products,
        carts=CartQueries(container.mongo),
        inventory=InventoryQueries(reads),
        orders=OrderQueries(reads),
        timeline=TimelineQueries(reads),
        projection_status=ProjectionStatusService(reads, container.freshness),
        payments=payments,
        settlement=settlement,
        order_updates=broker,
        edge=EdgeServices.build(settings, engine, container.redis, broker),
        pricing=PricingQueries(reads),
        read_model_versions=versions,
        product_search=SearchAnswers(products, versions, size=settings.edge.search_cache_size),
    )
    container.services = services
    return services


async def seed_demo_data(container: Container) -> bool:
    """Load the demo catalog on first start; False when there is nothing to seed (yet)."""
    from gateway.bootstrap import seed

    return await seed.seed_if_empty(container)
