"""The payment sandbox in its own process for the benchmarks (``python -m benchmarks.sandbox_server``).

The same app as ``python -m commands.payments.sandbox`` (``build_sandbox_app`` configured by
the ``SANDBOX_*`` variables), but bound to a free port of 127.0.0.1 that it prints as one
JSON line on stdout, like ``benchmarks.server``: the harness learns the port without a race,
and the provider's CPU is its own process's, not the gateway's.
"""

from __future__ import annotations

import os
import sys

import uvicorn

from benchmarks import announced
from commands.payments.sandbox import build_sandbox_app, config_from_env


async def serve() -> None:
    config, _port = config_from_env(os.environ)
    app = build_sandbox_app(config)
    await announced.serve_announced(uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False))


if __name__ == "__main__":
    sys.exit(announced.run(serve))
