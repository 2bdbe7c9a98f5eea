"""Registers each domain's command handlers, projections and services on a container.

Both process roots (``serve`` and ``project``) and the tests call ``wire``, so
they all run the same handlers and read models.
"""

from __future__ import annotations

from gateway.bootstrap import Container
from gateway.wiring_carts import wire_carts
from gateway.wiring_catalog import wire_catalog
from gateway.wiring_inventory import wire_inventory
from gateway.wiring_order_views import wire_order_views
from gateway.wiring_orders import wire_orders
from gateway.wiring_timeline import wire_timeline
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
    from gateway import seed

    return await seed.seed_if_empty(container)
