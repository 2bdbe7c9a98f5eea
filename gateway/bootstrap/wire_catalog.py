"""Wires the catalog domain: command handlers, projections and query services."""

from __future__ import annotations

from commands.handlers.catalog import upsert_product
from commands.messages.catalog import UpsertProduct
from gateway.bootstrap.container import Container
from projections.runner import RunnerConfig
from projections.search.projector import SearchProjection, alias_name
from queries.products import ProductService


def wire_catalog(container: Container, runner_config: RunnerConfig | None) -> None:
    prefix = container.settings.index_prefix
    container.bus.register(UpsertProduct, upsert_product)
    container.add_projections([SearchProjection(container.search, prefix)], runner_config)
    container.provide(ProductService(container.search, alias_name(prefix)))
