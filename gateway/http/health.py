"""Liveness and readiness: /readyz names each store and whether it answered, and whether the
read models have caught up with the ledger as it was at start (``gateway.bootstrap.catch_up``).

A failed check says which store and how (failed, timed out), never the
exception text: that may name hosts, users or versions, and goes to the logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from commands.store.migrate import current_revision, head_revision
from gateway.bootstrap.catch_up import NotCaughtUp, StartupCatchUp

log = logging.getLogger("gateway.health")
CHECK_TIMEOUT_SECONDS = 2.0


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    container = request.app.state.container

    async def postgres() -> str:
        async with container.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        current, head = await current_revision(container.engine), head_revision()
        if current != head:
            raise RuntimeError(f"migrations not current: database at {current}, code at {head}")
        return f"revision {current}"

    async def redis() -> str:
        await container.redis.ping()
        return "pong"

    async def search() -> str:
        info = await container.search.info()
        return str(info["version"]["number"])

    async def mongodb() -> str:
        await container.mongo.command("ping")
        return "pong"

    async def read_models() -> str:
        catch_up: StartupCatchUp = container.catch_up
        # Only what this process projects: beside a `project` worker, the worker's own share is
        # its readiness (and gating on it would deadlock a worker started after this gateway).
        # Failing ones (a poison event, a bug) do not block either: they would keep every new
        # process out of service; their reads and `projections` say they are stale.
        waited = [r.name for r in container.runners if r.running and not r.consecutive_failures]
        return await catch_up.check(waited)

    checks: dict[str, Callable[[], Awaitable[str]]] = {
        "postgres": postgres,
        "redis": redis,
        "search": search,
        "mongodb": mongodb,
        "read_models": read_models,
    }
    results = await asyncio.gather(*(_run(name, check) for name, check in checks.items()))
    body = dict(zip(checks, results, strict=True))
    ready = all(r["ok"] for r in results)
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": body}, 200 if ready else 503
    )


async def _run(name: str, check: Callable[[], Awaitable[str]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        ok = True
    except TimeoutError:
        log.warning("readiness check %s timed out after %s s", name, CHECK_TIMEOUT_SECONDS)
        detail, ok = "timed out", False
    except NotCaughtUp as behind:
        # Not a failure: projection names and ledger positions, nothing a client must not see.
        detail, ok = str(behind), False
    except Exception:
        log.warning("readiness check %s failed", name, exc_info=True)
        detail, ok = "failed", False
    return {"ok": ok, "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 1)}
