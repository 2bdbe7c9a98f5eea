"""The projector worker of the benchmark stack (``python -m benchmarks.projector_worker``).

What ``commerce-gateway project`` runs (``gateway.cli.project.running_projectors``), plus a
``/readyz`` on a free port of 127.0.0.1 announced on stdout like ``benchmarks.server``: the
harness learns its pid (for its CPU in ``/proc``) and when its projectors have started. The
gateway beside it runs with ``RUN_PROJECTORS=private`` and keeps only the carts projector (the
MongoDB stand-in is in the gateway's memory).
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks import announced
from gateway.bootstrap.logging import configure_logging
from gateway.bootstrap.settings import Settings
from gateway.cli.project import running_projectors


async def serve() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    async with running_projectors(settings) as container:
        running = sorted(r.name for r in container.runners if r.running)

        async def ready(_request: Request) -> JSONResponse:
            return JSONResponse({"projections": running})

        app = Starlette(routes=[Route("/readyz", ready)])
        await announced.serve_announced(
            uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
        )


if __name__ == "__main__":
    sys.exit(announced.run(serve))
