"""The load generator's HTTP client: keep-alive sockets on aiohttp.

The benchmarks first sent their requests with httpx, whose pooled async client spent about
2.1 ms of CPU per GraphQL request here (aiohttp: about 0.35 ms, same requests, same server).
The load generator shares the machine's two cores with the system it measures, so that CPU
was taken from the gateway and PostgreSQL: at 8 buyers it was about 5 ms per purchase, more
than half of what the gateway itself spent. Latencies are measured the same way (encode,
round trip, decode); the gateway's own CPU figures do not depend on the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
import msgspec

JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Reply:
    """A whole answer: status, headers (case-insensitive) and body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.content)

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}: {self.text[:300]}")


class LoadClient:
    """At most ``connections`` keep-alive sockets to ``base_url``, each closed after
    ``keepalive_seconds`` idle; with ``local_address`` (a 127.x.y.z loopback address) its
    sockets come from that address."""

    def __init__(
        self,
        base_url: str,
        connections: int,
        *,
        timeout: float,
        keepalive_seconds: float,
        local_address: str | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._keepalive = keepalive_seconds
        self._local = None if local_address is None else (local_address, 0)
        self._session: aiohttp.ClientSession | None = None

    async def post(
        self,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        return await self.request("POST", path, json=json, content=content, headers=headers)

    async def get(
        self, path: str, *, headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
    ) -> Reply:
        return await self.request("GET", path, headers=headers, params=params)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        if json is not None:
            given = {name.lower(): value for name, value in (headers or {}).items()}
            content, headers = msgspec.json.encode(json), {**JSON, **given}
        async with self._open().request(
            method, f"{self._base_url}{path}", data=content, headers=headers, params=params
        ) as response:
            body = await response.read()
            return Reply(response.status, response.headers, body)

    def _open(self) -> aiohttp.ClientSession:
        # Made at the first request, inside the event loop that sends them all.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connections,
                limit_per_host=self._connections,
                keepalive_timeout=self._keepalive,
                local_addr=self._local,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, skip_auto_headers=("user-agent",)
            )
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> LoadClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
