"""Process configuration from the environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from commands.events.inventory import MAX_BUCKETS
from gateway.bootstrap.published_defaults import DEV_JWT_SECRET as DEV_JWT_SECRET
from gateway.bootstrap.published_defaults import DEV_WEBHOOK_SECRET as DEV_WEBHOOK_SECRET
from gateway.bootstrap.published_defaults import MIN_SECRET_BYTES, PUBLISHED_SECRETS
from gateway.edge.settings import EdgeSettings
from gateway.edge.socket_settings import WebSocketSettings
from gateway.environment import ConfigurationError as ConfigurationError
from gateway.environment import EnvReader

log = logging.getLogger("gateway.settings")
# PAYMENT_PROVIDER's one value: the in-process sandbox, chosen explicitly.
SANDBOX_PROVIDER = "sandbox"


MONGOMOCK_SCHEME = "mongomock://"
# SEARCH_ENGINE's values: a real Elasticsearch, or an embedded-engine (osmem) server shared by URL.
ELASTICSEARCH_ENGINE = "elasticsearch"
OSMEM_ENGINE = "osmem"


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str | None = None
    mongodb_url: str | None = None
    mongodb_database: str = "commerce"
    elasticsearch_url: str | None = None
    # The embedded OpenSearch-compatible engine: in memory, and wants plain JSON.
    search_in_memory: bool = False
    # Which engine ELASTICSEARCH_URL points at; osmem wants plain JSON but, reached by URL from
    # several processes, is shared like any server (not volatile).
    search_engine: str = ELASTICSEARCH_ENGINE
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
    # How often hot SKUs' buckets are checked for free stock spread too unevenly (a cheap
    # unlocked read; only a SKU that drifted is locked and respread).
    stock_rebalance_seconds: float = 2.0
    # The automatic hot-SKU switch (same period): a SKU in one row reserved this many times a
    # second or more (over 5 s) is spread over ``stock_hot_buckets`` rows; 0 turns it off.
    stock_hot_reservations_per_second: float = 25.0
    stock_hot_buckets: int = 8
    # This process's checkouts let at one stock row at once (the rest wait in our queue, where
    # waiting costs PostgreSQL nothing: ``commands.inventory.row_gate``); 0: no limit.
    stock_row_contenders: int = 3
    # An authorization the provider has said for this long it never received is given up (the
    # order is cancelled, the cart free again): two looks by reconciliation at least this far apart.
    payment_abandon_seconds: float = 120.0
    data_dir: Path = field(default_factory=lambda: Path(".data"))
    read_wait_seconds: float = 2.0
    # How long checkout holds reserved stock before the sweeper releases it.
    reservation_lease_seconds: float = 900
    # Which projectors ``serve`` runs (RUN_PROJECTORS): all of them; none (``project`` workers
    # run them); or ``private``: only those whose read model no other process can reach (the
    # MongoDB stand-in), the rest being left to a ``project`` worker beside this gateway.
    run_projectors: str = "all"
    seed_demo: bool = True
    # The periodic jobs (payment reconciliation, reservation sweep): on in one process of a
    # ``serve --workers`` group (BACKGROUND_JOBS=0 on the others; both jobs are safe to run twice).
    background_jobs: bool = True
    migrate_on_start: bool = True
    log_level: str = "INFO"
    # GraphQL edge: request limits, static cost, budgets, caches.
    edge: EdgeSettings = field(default_factory=EdgeSettings)
    # GraphQL over WebSocket: message size, operations per socket, sockets per caller.
    websocket: WebSocketSettings = field(default_factory=WebSocketSettings)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def mongo_stand_in(self) -> bool:
        """``mongomock://`` selects the in-memory MongoDB stand-in explicitly."""
        return (self.mongodb_url or "").startswith(MONGOMOCK_SCHEME)

    @property
    def search_plain_json(self) -> bool:
        """The search engine is osmem, which refuses Elasticsearch's vendor media types."""
        return self.search_in_memory or self.search_engine == OSMEM_ENGINE

    @property
    def private_stores(self) -> frozenset[str]:
        """Read-model stores no other process can reach (the embedded search engine is a server
        other processes reach by URL; the MongoDB stand-in lives in this process)."""
        return frozenset({"mongodb"} if self.mongo_stand_in else ())

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
        search_engine = read.text("SEARCH_ENGINE", ELASTICSEARCH_ENGINE).strip().lower()
        if search_engine not in {ELASTICSEARCH_ENGINE, OSMEM_ENGINE}:
            raise ConfigurationError(
                f"SEARCH_ENGINE must be {ELASTICSEARCH_ENGINE} or {OSMEM_ENGINE}, not {search_engine!r}"
            )
        secret = read.text("AUTH_JWT_SECRET", "")
        webhook_secret = read.text("PAYMENT_WEBHOOK_SECRET", "")
        provider_url = read.optional("PAYMENT_PROVIDER_URL")
        provider = read.text("PAYMENT_PROVIDER", "").strip().lower()
        if provider not in {"", SANDBOX_PROVIDER}:
            raise ConfigurationError(f"PAYMENT_PROVIDER may only be {SANDBOX_PROVIDER!r}, not {provider!r}")
        if provider == SANDBOX_PROVIDER and provider_url is not None:
            raise ConfigurationError("set PAYMENT_PROVIDER=sandbox or PAYMENT_PROVIDER_URL, not both")
        if not development:
            _refuse_published_or_short("AUTH_JWT_SECRET", secret)
            _refuse_published_or_short("PAYMENT_WEBHOOK_SECRET", webhook_secret)
            _check_production_provider(provider, provider_url)
        return cls(
            env=mode,
            database_url=_url(read.optional("DATABASE_URL")),
            mongodb_url=read.optional("MONGODB_URL"),
            mongodb_database=read.text("MONGODB_DATABASE", "commerce"),
            elasticsearch_url=read.optional("ELASTICSEARCH_URL"),
            search_in_memory=read.flag("ELASTICSEARCH_IN_MEMORY", False),
            search_engine=search_engine,
            index_prefix=read.text("ELASTICSEARCH_INDEX_PREFIX", ""),
            redis_url=read.optional("REDIS_URL"),
            redis_prefix=read.text("REDIS_KEY_PREFIX", "cg:"),
            jwt_secret=secret or DEV_JWT_SECRET,
            webhook_secret=webhook_secret or DEV_WEBHOOK_SECRET,
            payment_provider_url=provider_url,
            payment_timeout_seconds=read.seconds("PAYMENT_TIMEOUT_SECONDS", 5.0),
            reconcile_interval_seconds=read.seconds("PAYMENT_RECONCILE_INTERVAL_SECONDS", 30.0),
            reservation_sweep_seconds=read.seconds("RESERVATION_SWEEP_SECONDS", 15.0),
            stock_rebalance_seconds=read.seconds("STOCK_REBALANCE_SECONDS", 2.0),
            stock_hot_reservations_per_second=read.real(
                "STOCK_HOT_RESERVATIONS_PER_SECOND", 25.0, non_negative=True
            ),
            stock_hot_buckets=_hot_buckets(read.integer("STOCK_HOT_BUCKETS", 8)),
            stock_row_contenders=read.integer("STOCK_ROW_CONTENDERS", 3, non_negative=True),
            payment_abandon_seconds=read.seconds("PAYMENT_ABANDON_SECONDS", 120.0, zero_allowed=True),
            data_dir=Path(read.text("COMMERCE_DATA_DIR", ".data")),
            read_wait_seconds=read.seconds("READ_WAIT_SECONDS", 2.0, zero_allowed=True),
            reservation_lease_seconds=read.seconds("RESERVATION_LEASE_SECONDS", 900),
            run_projectors=_projectors(read.text("RUN_PROJECTORS", "all")),
            seed_demo=development and read.flag("SEED_DEMO_DATA", True),
            background_jobs=read.flag("BACKGROUND_JOBS", True),
            migrate_on_start=read.flag("MIGRATE_ON_START", development),
            log_level=read.text("LOG_LEVEL", "INFO").upper(),
            edge=EdgeSettings.from_env(env),
            websocket=WebSocketSettings.from_env(env),
        )


def _refuse_published_or_short(name: str, value: str) -> None:
    if not value:
        raise ConfigurationError(f"production needs {name}")
    if value in PUBLISHED_SECRETS:
        raise ConfigurationError(f"production refuses {name}: it is a default published in the repository")
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"production needs {name} of at least {MIN_SECRET_BYTES} bytes")


def _check_production_provider(provider: str, provider_url: str | None) -> None:
    """Without a provider URL the in-process sandbox confirms orders without money: explicit opt-in only."""
    if provider_url is not None:
        return
    if provider != SANDBOX_PROVIDER:
        raise ConfigurationError(
            "production needs PAYMENT_PROVIDER_URL (or PAYMENT_PROVIDER=sandbox to run the "
            "in-process sandbox, which takes no money)"
        )
    log.warning(
        "PAYMENT_PROVIDER=sandbox in production: the in-process sandbox confirms orders without taking money"
    )


def _url(raw: str | None) -> str | None:
    """Accept plain postgres URLs and point SQLAlchemy at asyncpg."""
    if not raw:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+asyncpg://" + raw[len(prefix) :]
    return raw


PROJECTORS_ALL, PROJECTORS_NONE, PROJECTORS_PRIVATE = "all", "none", "private"
# Container.start_projectors scope of a ``project`` worker: every projection it can reach.
PROJECTORS_SHARED = "shared"


def _projectors(raw: str) -> str:
    value = raw.strip().lower()
    if value in {"", "1", "true", "yes", PROJECTORS_ALL}:
        return PROJECTORS_ALL
    if value in {"0", "false", "no", PROJECTORS_NONE}:
        return PROJECTORS_NONE
    if value == PROJECTORS_PRIVATE:
        return PROJECTORS_PRIVATE
    raise ConfigurationError(f"RUN_PROJECTORS must be 1 (all), 0 (none) or private, not {raw!r}")


def _hot_buckets(count: int) -> int:
    # Bucket counts an admin may set (inventorySetBuckets) above one row.
    if not 2 <= count <= MAX_BUCKETS:
        raise ConfigurationError(f"STOCK_HOT_BUCKETS must be between 2 and {MAX_BUCKETS}, not {count}")
    return count
