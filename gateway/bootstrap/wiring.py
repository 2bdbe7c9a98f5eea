"""Registers each domain's command handlers, projections and services on a container.

Both process roots (``serve`` and ``project``) and the tests call ``wire``, so
they all run the same handlers and read models.
"""

from __future__ import annotations

from gateway.bootstrap.container import Container
from gateway.bootstrap.order_views import wire_order_views
from gateway.bootstrap.orders import wire_orders
from gateway.bootstrap.wire_carts import wire_carts
from gateway.bootstrap.wire_catalog import wire_catalog
from gateway.bootstrap.wire_inventory import wire_inventory
from gateway.bootstrap.wire_timeline import wire_timeline
from projections.runner import RunnerConfig


def wire(container: Container, runner_config: RunnerConfig | None = None) -> None:
    wire_catalog(container, runner_config)
    wire_carts(container, runner_config)
    wire_inventory(container, runner_config)
    wire_orders(container, runner_config)
    wire_order_views(container, runner_config)
    wire_timeline(container, runner_config)


async def seed_demo_data(container: Container) -> bool:
    """Load the demo catalog on first start; False when there is nothing to seed (yet)."""
    from gateway.bootstrap import seed

    return await seed.seed_if_empty(container)
