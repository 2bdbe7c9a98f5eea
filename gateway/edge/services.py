"""The edge's stateful services for one container: API clients, documents, budgets, pub/sub."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.bootstrap.settings import Settings
from gateway.edge.budget import CostBudget
from gateway.edge.clients import ApiClients
from gateway.edge.persisted import ApqCache, DocumentResolver, TrustedDocuments
from gateway.realtime.subscriptions import OrderUpdatesBroker


@dataclass
class EdgeServices:
    clients: ApiClients
    trusted: TrustedDocuments
    resolver: DocumentResolver
    budget: CostBudget
    broker: OrderUpdatesBroker

    @classmethod
    def build(
        cls, settings: Settings, engine: AsyncEngine, redis: Redis, broker: OrderUpdatesBroker
    ) -> EdgeServices:
        trusted = TrustedDocuments(engine)
        apq = ApqCache(redis, settings.redis_prefix, settings.edge.apq_ttl_seconds)
        return cls(
            clients=ApiClients(engine, settings.edge.api_key_cache_seconds),
            trusted=trusted,
            resolver=DocumentResolver(trusted, apq),
            budget=CostBudget(redis, settings.redis_prefix),
            broker=broker,
        )
