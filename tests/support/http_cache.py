"""HTTP caching test helpers: Apollo's persisted-query link over GET, and a small shared cache.

``apollo_get`` does what Apollo Client's ``createPersistedQueryLink({useGETForHashedQueries})``
does: a GET with the hash only, and on PERSISTED_QUERY_NOT_FOUND the same GET with the query.
``SharedCache`` is a minimal shared HTTP cache (a CDN's behaviour) in front of an httpx client:
it stores ``public`` answers only, keyed by URL and the request headers named in ``Vary``,
serves them while fresh and revalidates them with ``If-None-Match`` afterwards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

ACCEPT = "application/graphql-response+json"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted_params(
    query: str, variables: Mapping[str, Any] | None = None, *, with_query: bool = False
) -> dict[str, str]:
    params = {
        "extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": sha256(query)}}),
    }
    if variables:
        params["variables"] = json.dumps(variables, separators=(",", ":"))
    if with_query:
        params["query"] = query
    return params


def url_of(query: str, variables: Mapping[str, Any] | None = None, *, with_query: bool = False) -> str:
    return str(httpx.URL("/graphql", params=persisted_params(query, variables, with_query=with_query)))


async def apollo_get(
    client: httpx.AsyncClient,
    query: str,
    variables: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Hash first; the query too only when the server does not know the hash."""
    all_headers = {"accept": ACCEPT, **(headers or {})}
    response = await client.get(url_of(query, variables), headers=all_headers)
    codes = [e["extensions"]["code"] for e in response.json().get("errors", [])]
    if codes == ["PERSISTED_QUERY_NOT_FOUND"]:
        response = await client.get(url_of(query, variables, with_query=True), headers=all_headers)
    return response


def directives(response: httpx.Response) -> dict[str, str]:
    """``Cache-Control`` as {directive: value} ("" for directives without one)."""
    found: dict[str, str] = {}
    for part in response.headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            found[name.lower()] = value
    return found


@dataclass
class _Stored:
    response: httpx.Response
    stored_at: float
    max_age: float


@dataclass
class SharedCache:
    """A shared cache in front of ``client``; ``clock`` gives seconds (tests move it by hand)."""

    client: httpx.AsyncClient
    clock: Callable[[], float]
    entries: dict[tuple[str, tuple[tuple[str, str], ...]], _Stored] = field(default_factory=dict)
    # What reached the origin, and how it was answered from here.
    origin_statuses: list[int] = field(default_factory=list)
    hits: int = 0

    async def get(self, url: str, headers: Mapping[str, str]) -> httpx.Response:
        lowered = {k.lower(): v for k, v in headers.items()}
        for (stored_url, varied), entry in list(self.entries.items()):
            if stored_url != url or any(lowered.get(name, "") != value for name, value in varied):
                continue
            if self.clock() - entry.stored_at < entry.max_age:
                self.hits += 1
                return entry.response
            etag = entry.response.headers.get("etag")
            conditional = {**lowered, "if-none-match": etag} if etag else lowered
            fresh = await self.client.get(url, headers=conditional)
            self.origin_statuses.append(fresh.status_code)
            if fresh.status_code == 304:
                entry.stored_at = self.clock()
                entry.max_age = float(directives(fresh).get("max-age", "0"))
                return entry.response
            self.entries.pop((stored_url, varied))
            self._store(url, lowered, fresh)
            return fresh
        response = await self.client.get(url, headers=lowered)
        self.origin_statuses.append(response.status_code)
        self._store(url, lowered, response)
        return response

    def _store(self, url: str, headers: Mapping[str, str], response: httpx.Response) -> None:
        rules = directives(response)
        if response.status_code != 200 or "public" not in rules or "no-store" in rules:
            return
        vary = [v.strip().lower() for v in response.headers.get("vary", "").split(",") if v.strip()]
        varied = tuple((name, headers.get(name, "")) for name in vary)
        self.entries[(url, varied)] = _Stored(response, self.clock(), float(rules.get("max-age", "0")))
