"""Wires the carts domain: command handlers, projections and query services."""

from __future__ import annotations

from commands.handlers import cart as cart_handlers
from gateway.bootstrap.container import Container
from projections.carts import CartsProjection
from projections.runner import RunnerConfig
from queries.carts import CartQueries


def wire_carts(container: Container, runner_config: RunnerConfig | None) -> None:
    cart_handlers.register(container.bus)
    container.add_projections([CartsProjection(container.mongo)], runner_config)
    container.provide(CartQueries(container.mongo))
