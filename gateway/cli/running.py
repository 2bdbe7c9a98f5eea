"""The CLI beside a gateway that holds the data directory (embedded mode).

Commands that need only PostgreSQL (and Redis, search) connect to the running gateway's
servers, found in the runtime file it publishes next to its lock. Work that needs the
gateway's own process (a rebuild pauses its live projectors and may write into its
in-memory stores; the development payment sandbox lives in it) goes through its admin
endpoints, with an admin token minted from the configured secret.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.bootstrap.settings import MONGOMOCK_SCHEME, OSMEM_ENGINE, ConfigurationError, Settings
from gateway.stores import runtime
from gateway.stores.runtime import GatewayRuntime

ADMIN_TOKEN_SECONDS = 600
POLL_SECONDS = 0.5


def needs_embedded(settings: Settings) -> bool:
    urls = (settings.database_url, settings.redis_url, settings.elasticsearch_url, settings.mongodb_url)
    return None in urls


def running_gateway(settings: Settings) -> GatewayRuntime | None:
    """The runtime of the process that holds the data directory, when the settings need it."""
    if not needs_embedded(settings):
        return None
    data_dir = settings.data_dir.resolve()
    if not runtime.is_locked(data_dir):
        return None
    published = runtime.read(data_dir)
    if published is None:
        raise ConfigurationError(
            f"a gateway is starting on data directory {data_dir}; try again once it is ready"
        )
    return published


def borrowed_postgres(settings: Settings, gateway: GatewayRuntime) -> Settings:
    """Settings whose DATABASE_URL is the running gateway's embedded server (already migrated)."""
    if gateway.database_url is None:
        raise ConfigurationError("the running gateway did not publish its PostgreSQL server")
    return settings.with_overrides(database_url=gateway.database_url, migrate_on_start=False)


def borrowed(settings: Settings, gateway: GatewayRuntime) -> Settings:
    """Settings that use the running gateway's servers for every store this process would embed.

    The MongoDB stand-in is in the gateway's memory: a borrowing process gets an empty one of
    its own, which only commands that do not read carts may rely on (and which a ``project``
    worker leaves to the gateway).
    """
    changes: dict[str, object] = {"migrate_on_start": False}
    if settings.database_url is None:
        if gateway.database_url is None:
            raise ConfigurationError("the running gateway did not publish its PostgreSQL server")
        changes["database_url"] = gateway.database_url
    if settings.redis_url is None:
        if gateway.redis_url is None:
            raise ConfigurationError("the running gateway did not publish its Redis server")
        changes["redis_url"] = gateway.redis_url
    if settings.elasticsearch_url is None:
        if gateway.elasticsearch_url is None:
            raise ConfigurationError("the running gateway did not publish its search engine")
        changes["elasticsearch_url"] = gateway.elasticsearch_url
        # The gateway's embedded engine is a server this process reaches by URL: shared, not
        # this process's memory (a ``project`` worker may keep its index).
        changes["search_engine"] = OSMEM_ENGINE
    if settings.mongodb_url is None:
        changes["mongodb_url"] = MONGOMOCK_SCHEME
    return settings.with_overrides(**changes)


@dataclass
class GatewayAdmin:
    """The admin endpoints of the running gateway."""

    base_url: str
    token: str

    @classmethod
    def of(cls, settings: Settings, gateway: GatewayRuntime) -> GatewayAdmin:
        from gateway.edge.auth import JwtAuthenticator

        if gateway.gateway_url is None:
            raise ConfigurationError(
                f"the process holding data directory {settings.data_dir.resolve()} (pid {gateway.pid}) "
                "does not serve HTTP; stop it, or run this against a `serve` process"
            )
        token = JwtAuthenticator(settings.jwt_secret).mint("operator-cli", ["admin"], ADMIN_TOKEN_SECONDS)
        return cls(gateway.gateway_url, token)

    async def _call(self, http: httpx.AsyncClient, method: str, path: str) -> dict[str, Any]:
        try:
            response = await http.request(
                method, f"{self.base_url}{path}", headers={"authorization": f"Bearer {self.token}"}
            )
        except httpx.HTTPError as exc:
            raise ConfigurationError(f"cannot reach the running gateway at {self.base_url}: {exc}") from None
        body: dict[str, Any] = response.json() if response.content else {}
        if response.status_code >= 400:
            message = body.get("error", {}).get("message") or response.text
            raise ConfigurationError(f"the running gateway refused: {message}")
        return body

    async def rebuild(self, name: str) -> str:
        started = time.perf_counter()
        path = f"/admin/projections/{name}/rebuild"
        async with httpx.AsyncClient(timeout=30) as http:
            progress = await self._call(http, "POST", path)
            while not progress["done"]:
                _show_progress(name, float(progress["fraction"]))
                await asyncio.sleep(POLL_SECONDS)
                progress = await self._call(http, "GET", path)
        _show_progress(name, None)
        if progress["error"] is not None:
            raise ConfigurationError(f"rebuild of {name} failed in the running gateway: {progress['error']}")
        elapsed = time.perf_counter() - started
        return (
            f"projection {name} rebuilt up to position {progress['copy_position']} in {elapsed:.1f} s "
            "(by the running gateway)"
        )

    async def reconcile(self) -> dict[str, int]:
        async with httpx.AsyncClient(timeout=120) as http:
            report = await self._call(http, "POST", "/admin/reconcile")
        return {key: int(value) for key, value in report.items()}


def _show_progress(name: str, fraction: float | None) -> None:
    """A progress line for a person watching; nothing when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return
    if fraction is None:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    else:
        print(f"\rrebuilding {name}: {fraction:.0%}", end="", file=sys.stderr, flush=True)
