"""Admin endpoints for the operator CLI beside a running gateway.

In embedded mode some read models live inside the gateway process (the in-memory
search engine, the MongoDB stand-in), its projectors are the live ones a rebuild must
pause, and the development payment sandbox runs in it too: the CLI asks the gateway
rather than doing the work itself. Every endpoint needs an admin bearer token.

- ``POST /admin/projections/{name}/rebuild``: start a rebuild (202), or 409 when one runs;
- ``GET /admin/projections/{name}/rebuild``: its progress, and its error when it failed;
- ``POST /admin/reconcile``: settle payment attempts with unknown outcomes, now.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.bootstrap.container import Container
from gateway.edge.errors import GatewayError
from projections.rebuild import NotRebuildable, RebuildInProgress, RebuildProgress


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def _authorized(request: Request) -> Container | JSONResponse:
    container: Container = request.app.state.container
    try:
        principal = container.authenticator.authenticate(request.headers.get("authorization"))
        principal.require("admin")
    except GatewayError as exc:
        status = 401 if exc.code == "UNAUTHENTICATED" else 403
        return _error(status, exc.code.lower(), exc.message)
    return container


def _progress(progress: RebuildProgress) -> dict[str, Any]:
    return {**asdict(progress), "fraction": progress.fraction}


async def start_rebuild(request: Request) -> Response:
    container = _authorized(request)
    if isinstance(container, JSONResponse):
        return container
    name = request.path_params["name"]
    try:
        runner = container.runner(name)
    except LookupError:
        known = ", ".join(r.name for r in container.runners)
        return _error(404, "not_found", f"no projection named {name!r} (known: {known})")
    try:
        progress = container.rebuilder.start(runner)
    except RebuildInProgress as exc:
        return _error(409, "rebuild_in_progress", str(exc))
    except NotRebuildable as exc:
        return _error(400, "not_rebuildable", str(exc))
    return JSONResponse(_progress(progress), status_code=202)


async def rebuild_status(request: Request) -> Response:
    container = _authorized(request)
    if isinstance(container, JSONResponse):
        return container
    name = request.path_params["name"]
    progress = container.rebuilder.progress(name)
    if progress is None:
        return _error(404, "not_found", f"no rebuild of {name!r} in this gateway")
    return JSONResponse(_progress(progress))


async def reconcile_now(request: Request) -> Response:
    from gateway.bootstrap.background import reconcile_once

    container = _authorized(request)
    if isinstance(container, JSONResponse):
        return container
    report = await reconcile_once(container)
    return JSONResponse(asdict(report))


ROUTES = [
    Route("/admin/projections/{name}/rebuild", start_rebuild, methods=["POST"]),
    Route("/admin/projections/{name}/rebuild", rebuild_status, methods=["GET"]),
    Route("/admin/reconcile", reconcile_now, methods=["POST"]),
]
