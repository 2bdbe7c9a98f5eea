"""How each process of the benchmark stack starts: on a free port of 127.0.0.1, announced as one
JSON line (``{"port", "pid"}``) on stdout, which ``harness.ServerProcess`` reads; Ctrl-C ends it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn

from gateway.bootstrap import event_loop


async def serve_announced(config: uvicorn.Config) -> None:
    """Serve ``config``'s app on a free loopback port, announced once bound."""
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (no delayed-ACK stalls).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    print(json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}), flush=True)
    await server.serve(sockets=[sock])


def run(serve: Callable[[], Coroutine[Any, Any, None]]) -> int:
    """The process's main: ``serve`` until interrupted."""
    with contextlib.suppress(KeyboardInterrupt):
        event_loop.run(serve())
    return 0
