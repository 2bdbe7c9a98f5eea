"""Helpers for the edge tests: apps with overridden limits, a controllable budget clock."""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from gateway.bootstrap.container import Container
from gateway.edge.budget import CostBudget
from gateway.http.app import build_app

GRAPHQL_RESPONSE = "application/graphql-response+json"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.asynccontextmanager
async def edge_http(
    container: Container, *, production: bool = False, **edge: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client over ``build_app`` with edge settings (and the mode) overridden."""
    settings = container.settings
    if edge:
        settings = settings.with_overrides(edge=settings.edge.with_overrides(**edge))
    if production:
        settings = settings.with_overrides(env="production")
    served = copy.copy(container)
    served.settings = settings
    transport = httpx.ASGITransport(app=build_app(served))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


async def post(
    http: httpx.AsyncClient,
    payload: object,
    *,
    headers: dict[str, str] | None = None,
    accept: str | None = "application/json",
) -> httpx.Response:
    all_headers = {"content-type": "application/json", **(headers or {})}
    if accept is not None:
        all_headers["accept"] = accept
    return await http.post("/graphql", json=payload, headers=all_headers)


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def use_budget_clock(container: Container, clock: FakeClock) -> None:
    """Budgets of this container's edge follow ``clock`` instead of Redis time."""
    services = container.services.edge
    services.budget = CostBudget(container.redis, container.settings.redis_prefix, clock=clock)
