"""The edge's stateful services for one container: API clients, documents, budgets, pub/sub."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.bootstrap.container import Container
from gateway.edge.budget import CostBudget
from gateway.edge.clients import ApiClients
from gateway.edge.persisted import ApqCache, DocumentResolver, TrustedDocuments
from gateway.realtime.subscriptions import OrderUpdatesBroker, order_updates_broker


@dataclass
class EdgeServices:
    clients: ApiClients
    trusted: TrustedDocuments
    resolver: DocumentResolver
    budget: CostBudget
    broker: OrderUpdatesBroker

    @classmethod
    def of(cls, container: Container) -> EdgeServices:
        """The container's edge services, created on first use (one set per process)."""
        try:
            return container.get(EdgeServices)
        except LookupError:
            pass
        settings = container.settings
        trusted = TrustedDocuments(container.engine)
        apq = ApqCache(container.redis, settings.redis_prefix, settings.edge.apq_ttl_seconds)
        services = cls(
            clients=ApiClients(container.engine, settings.edge.api_key_cache_seconds),
            trusted=trusted,
            resolver=DocumentResolver(trusted, apq),
            budget=CostBudget(container.redis, settings.redis_prefix),
            broker=order_updates_broker(container),
        )
        container.provide(services)
        return services
