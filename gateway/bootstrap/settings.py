"""Process configuration from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from gateway.edge.settings import EdgeSettings
from gateway.environment import ConfigurationError as ConfigurationError
from gateway.environment import EnvReader

# Development default only: production refuses to start without AUTH_JWT_SECRET.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-do-not-use-in-production"
# Development default only, for the sandbox payment provider's webhooks.
DEV_WEBHOOK_SECRET = "dev-only-sandbox-webhook-secret"


MONGOMOCK_SCHEME = "mongomock://"


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
        read = EnvReader(env)
        mode = read.text("COMMERCE_ENV", "development").strip().lower()
        if mode not in {"development", "production"}:
            raise ConfigurationError(f"COMMERCE_ENV must be development or production, not {mode!r}")
        development = mode == "development"
        secret = read.text("AUTH_JWT_SECRET", "")
        if not development and len(secret) < 32:
            raise ConfigurationError("production needs AUTH_JWT_SECRET of at least 32 characters")
        webhook_secret = read.text("PAYMENT_WEBHOOK_SECRET", "")
        if not development and not webhook_secret:
            raise ConfigurationError("production needs PAYMENT_WEBHOOK_SECRET")
        return cls(
            env=mode,
            database_url=_url(read.optional("DATABASE_URL")),
            mongodb_url=read.optional("MONGODB_URL"),
            mongodb_database=read.text("MONGODB_DATABASE", "commerce"),
            elasticsearch_url=read.optional("ELASTICSEARCH_URL"),
            search_in_memory=read.flag("ELASTICSEARCH_IN_MEMORY", False),
            index_prefix=read.text("ELASTICSEARCH_INDEX_PREFIX", ""),
            redis_url=read.optional("REDIS_URL"),
            redis_prefix=read.text("REDIS_KEY_PREFIX", "cg:"),
            jwt_secret=secret or DEV_JWT_SECRET,
            webhook_secret=webhook_secret or DEV_WEBHOOK_SECRET,
            payment_provider_url=read.optional("PAYMENT_PROVIDER_URL"),
            payment_timeout_seconds=read.real("PAYMENT_TIMEOUT_SECONDS", 5.0),
            reconcile_interval_seconds=read.real("PAYMENT_RECONCILE_INTERVAL_SECONDS", 30.0),
            reservation_sweep_seconds=read.real("RESERVATION_SWEEP_SECONDS", 15.0),
            payment_abandon_seconds=read.real("PAYMENT_ABANDON_SECONDS", 900.0),
            data_dir=Path(read.text("COMMERCE_DATA_DIR", ".data")),
            read_wait_seconds=read.real("READ_WAIT_SECONDS", 2.0),
            reservation_lease_seconds=read.real("RESERVATION_LEASE_SECONDS", 900),
            run_projectors=read.flag("RUN_PROJECTORS", True),
            seed_demo=development and read.flag("SEED_DEMO_DATA", True),
            migrate_on_start=read.flag("MIGRATE_ON_START", development),
            log_level=read.text("LOG_LEVEL", "INFO").upper(),
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
