"""The projector worker of the benchmark stack (``python -m benchmarks.projector_worker``).

What ``commerce-gateway project`` runs (``build_container``, ``wire``, the runners of every
projection this process can reach, under its own leases), plus a ``/readyz`` on a free port of
127.0.0.1 printed as one JSON line on stdout, like ``benchmarks.server``: the harness learns
its pid (for its CPU in ``/proc``) and when its projectors have started. The gateway beside it
runs with ``RUN_PROJECTORS=private`` and keeps only the carts projector (the MongoDB stand-in
is in the gateway's memory).
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks import announced
from benchmarks.announced import serve_announced
from gateway.bootstrap.container import SHARED_ONLY, build_container
from gateway.bootstrap.logging import configure_logging
from gateway.bootstrap.settings import Settings
from gateway.bootstrap.wiring import wire
from projections.lease import process_label


async def serve() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    container = await build_container(settings)
    container.leases.holder = process_label("project")
    try:
        wire(container)
        await container.start_projectors(scope=SHARED_ONLY)
        running = sorted(r.name for r in container.runners if r.running)

        async def ready(_request: Request) -> JSONResponse:
            return JSONResponse({"projections": running})

        app = Starlette(routes=[Route("/readyz", ready)])
        await serve_announced(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    finally:
        await container.close()


if __name__ == "__main__":
    sys.exit(announced.run(serve))
