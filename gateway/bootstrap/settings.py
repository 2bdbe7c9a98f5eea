"""Process configuration from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from gateway.edge.settings import EdgeSettings

# Development default only: production refuses to start without AUTH_JWT_SECRET.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-do-not-use-in-production"
# Development default only, for the sandbox payment provider's webhooks.
DEV_WEBHOOK_SECRET = "dev-only-sandbox-webhook-secret"


MONGOMOCK_SCHEME = "mongomock://"


class ConfigurationError(Exception):
    """The environment does not describe a runnable configuration."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str | None = None
    mongodb_url: str | None = None
    mongodb_database: str = "commerce"
    elasticsearch_url: str | None = None
    # The embedded OpenSearch-compatible engine: in memory, and wants plain JSON.
    search_in_memory: bool = False
    index_prefix: str = ""
    redis_url: str | None = None
    redis_prefix: str = "cg:"
    jwt_secret: str = DEV_JWT_SECRET
    webhook_secret: str = DEV_WEBHOOK_SECRET
    payment_provider_url: str | None = None
    # Checkout payments: how long a provider call may take, and how often unknown outcomes
    # and expired reservations are swept up in the background.
    payment_timeout_seconds: float = 5.0
    reconcile_interval_seconds: float = 30.0
    reservation_sweep_seconds: float = 15.0
    # An authorization the provider never received, this old, is given up (the order is cancelled).
    payment_abandon_seconds: float = 900.0
    data_dir: Path = field(default_factory=lambda: Path(".data"))
    read_wait_seconds: float = 2.0
    # How long checkout holds reserved stock before the sweeper releases it.
    reservation_lease_seconds: float = 900
    run_projectors: bool = True
    seed_demo: bool = True
    migrate_on_start: bool = True
    log_level: str = "INFO"
    # GraphQL edge: request limits, static cost, budgets, caches.
    edge: EdgeSettings = field(default_factory=EdgeSettings)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def mongo_stand_in(self) -> bool:
        """``mongomock://`` selects the in-memory MongoDB stand-in explicitly."""
        return (self.mongodb_url or "").startswith(MONGOMOCK_SCHEME)

    @property
    def volatile_stores(self) -> frozenset[str]:
        """Read-model stores that start empty with every process."""
        stores = set()
        if self.search_in_memory:
            stores.add("elasticsearch")
        if self.mongo_stand_in:
            stores.add("mongodb")
        return frozenset(stores)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        mode = env.get("COMMERCE_ENV", "development").strip().lower()
        if mode not in {"development", "production"}:
            raise ConfigurationError(f"COMMERCE_ENV must be development or production, not {mode!r}")
        secret = env.get("AUTH_JWT_SECRET") or ""
        if mode == "production" and len(secret) < 32:
            raise ConfigurationError("production needs AUTH_JWT_SECRET of at least 32 characters")
        webhook_secret = env.get("PAYMENT_WEBHOOK_SECRET") or ""
        if mode == "production" and not webhook_secret:
            raise ConfigurationError("production needs PAYMENT_WEBHOOK_SECRET")
        return cls(
            env=mode,
            database_url=_url(env.get("DATABASE_URL")),
            mongodb_url=env.get("MONGODB_URL") or None,
            mongodb_database=env.get("MONGODB_DATABASE", "commerce"),
            elasticsearch_url=env.get("ELASTICSEARCH_URL") or None,
            search_in_memory=env.get("ELASTICSEARCH_IN_MEMORY", "0") in {"1", "true", "yes"},
            index_prefix=env.get("ELASTICSEARCH_INDEX_PREFIX", ""),
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("REDIS_KEY_PREFIX", "cg:"),
            jwt_secret=secret or DEV_JWT_SECRET,
            webhook_secret=webhook_secret or DEV_WEBHOOK_SECRET,
            payment_provider_url=env.get("PAYMENT_PROVIDER_URL") or None,
            payment_timeout_seconds=float(env.get("PAYMENT_TIMEOUT_SECONDS", "5.0")),
            reconcile_interval_seconds=float(env.get("PAYMENT_RECONCILE_INTERVAL_SECONDS", "30.0")),
            reservation_sweep_seconds=float(env.get("RESERVATION_SWEEP_SECONDS", "15.0")),
            payment_abandon_seconds=float(env.get("PAYMENT_ABANDON_SECONDS", "900.0")),
            data_dir=Path(env.get("COMMERCE_DATA_DIR", ".data")),
            read_wait_seconds=float(env.get("READ_WAIT_SECONDS", "2.0")),
            reservation_lease_seconds=float(env.get("RESERVATION_LEASE_SECONDS", "900")),
            run_projectors=env.get("RUN_PROJECTORS", "1") not in {"0", "false", "no"},
            seed_demo=mode == "development" and env.get("SEED_DEMO_DATA", "1") not in {"0", "false", "no"},
            migrate_on_start=env.get("MIGRATE_ON_START", "1" if mode == "development" else "0")
            not in {"0", "false", "no"},
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            edge=EdgeSettings.from_env(env),
        )


def _url(raw: str | None) -> str | None:
    """Accept plain postgres URLs and point SQLAlchemy at asyncpg."""
    if not raw:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+asyncpg://" + raw[len(prefix) :]
    return raw
