"""The payment sandbox in its own process for the benchmarks (``python -m benchmarks.sandbox_server``).

The same app as ``python -m commands.payments.sandbox`` (``build_sandbox_app`` configured by
the ``SANDBOX_*`` variables), but bound to a free port of 127.0.0.1 that it prints as one
JSON line on stdout, like ``benchmarks.server``: the harness learns the port without a race,
and the provider's CPU is its own process's, not the gateway's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys

import uvicorn

from commands.payments.sandbox import build_sandbox_app, config_from_env


async def serve() -> None:
    config, _port = config_from_env(os.environ)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(build_sandbox_app(config), lifespan="on", log_level="warning", access_log=False)
    )
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    await server.serve(sockets=[sock])


def main() -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
