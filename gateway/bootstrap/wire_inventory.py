"""Wires the inventory domain: command handlers, projections and query services."""

from __future__ import annotations

from commands.handlers import inventory as inventory_handlers
from gateway.bootstrap.container import Container
from projections.inventory import InventoryProjection
from projections.runner import RunnerConfig
from queries.inventory import InventoryQueries


def wire_inventory(container: Container, runner_config: RunnerConfig | None) -> None:
    inventory_handlers.register(container.bus)
    container.add_projections([InventoryProjection(container.engine)], runner_config)
    container.provide(InventoryQueries(container.engine))
