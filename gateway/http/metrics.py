"""HTTP and projection series, and the /metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from commands import metrics as _business_metrics  # noqa: F401  (registers the business series)
from commands.store.connections import ConnectionStats

if TYPE_CHECKING:
    from gateway.bootstrap.container import Container

log = logging.getLogger(__name__)
# How old the lag series may be: scrapes in between are served from the last refresh.
LAG_CACHE_SECONDS = 5.0

REQUESTS = Counter("commerce_http_requests_total", "GraphQL and HTTP requests", ["operation", "outcome"])
REQUEST_SECONDS = Histogram(
    "commerce_http_request_duration_seconds",
    "Request latency",
    ["operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PROJECTION_LAG_EVENTS = Gauge("commerce_projection_lag_events", "Events not yet applied", ["projection"])
PROJECTION_LAG_SECONDS = Gauge(
    "commerce_projection_lag_seconds", "Age of the oldest event not yet applied", ["projection"]
)


class CommandConnectionSeries(Collector):
    """The command connections' queue, read at scrape time (nothing counted on the hot path)."""

    def __init__(self) -> None:
        self.source: Callable[[], ConnectionStats] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.source is None:
            return
        stats = self.source()
        now = GaugeMetricFamily(
            "commerce_command_connections", "Kept command connections by state", labels=["state"]
        )
        now.add_metric(["in_use"], stats.kept - stats.idle)
        now.add_metric(["idle"], stats.idle)
        now.add_metric(["units_waiting"], stats.waiting)
        yield now
        yield CounterMetricFamily(
            "commerce_command_connection_waits",
            "Units of work that waited for a command connection",
            stats.waited,
        )
        yield CounterMetricFamily(
            "commerce_command_connection_wait_seconds",
            "Time units of work spent waiting for a command connection",
            stats.seconds_waited,
        )


COMMAND_CONNECTIONS = CommandConnectionSeries()
REGISTRY.register(COMMAND_CONNECTIONS)


# Operation names come from clients: cap the label set so a client cannot blow up the series count.
MAX_OPERATION_LABELS = 300
_GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
_seen_operations: set[str] = set()


def operation_label(name: str) -> str:
    if name in _seen_operations:
        return name
    if name.startswith("/"):
        return name  # a route label from the middleware: a fixed, small set
    if len(_seen_operations) >= MAX_OPERATION_LABELS or not _GRAPHQL_NAME.fullmatch(name):
        return "other"
    _seen_operations.add(name)
    return name


def observe_request(operation: str, outcome: str, seconds: float) -> None:
    label = operation_label(operation)
    REQUESTS.labels(label, outcome).inc()
    REQUEST_SECONDS.labels(label, outcome).observe(seconds)


class LagCache:
    """Projection lag refreshed at most every ``max_age_seconds``, however often /metrics is scraped.

    Each refresh runs one freshness query per projection; several scrapers (or
    a scrape loop) would otherwise multiply that load. Concurrent scrapes share
    one refresh.
    """

    def __init__(self, max_age_seconds: float = LAG_CACHE_SECONDS) -> None:
        self.max_age_seconds = max_age_seconds
        self._refreshed_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self, container: Container) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._refreshed_at is not None and now - self._refreshed_at < self.max_age_seconds:
                return
            names = [runner.name for runner in container.runners]
            results = await asyncio.gather(
                *(container.freshness.freshness(n) for n in names), return_exceptions=True
            )
            for name, result in zip(names, results, strict=True):
                if isinstance(result, BaseException):
                    log.warning("lag for %s unavailable: %s", name, result)
                    continue
                PROJECTION_LAG_EVENTS.labels(name).set(result.lag_events)
                PROJECTION_LAG_SECONDS.labels(name).set(result.lag_seconds)
            self._refreshed_at = time.monotonic()


async def metrics_endpoint(request: Request) -> Response:
    state = request.app.state
    cache: LagCache | None = getattr(state, "lag_cache", None)
    if cache is None:
        cache = state.lag_cache = LagCache()
    await cache.refresh(state.container)
    COMMAND_CONNECTIONS.source = state.container.connections.stats
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
