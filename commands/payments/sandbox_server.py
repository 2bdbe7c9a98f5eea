"""Serve an ASGI app under uvicorn inside the current event loop (the sandbox in tests and embedded mode)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from commands.payments.sandbox_app import SandboxConfig, SandboxState, build_sandbox_app


class _EmbeddedUvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The host process owns SIGINT/SIGTERM; an embedded server must not take them over.
        yield


class InProcessServer:
    """``app`` served over real HTTP on ``host``; port 0 picks a free port."""

    def __init__(self, app: ASGIApp, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.app = app
        self._host, self._port = host, port
        self._server: _EmbeddedUvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self.base_url = ""

    async def start(self) -> str:
        """Serve until ``stop``; returns the base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._task is not None:
            raise RuntimeError("server already started")
        # Binding here, before uvicorn starts, is what tells us the port that 0 chose.
        # proto=IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on such sockets, and without it
        # each keep-alive request waits ~40 ms on delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan="on", log_level="warning", access_log=False)
        self._server = _EmbeddedUvicorn(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                sock.close()
                await self._task  # re-raises why uvicorn could not start
                raise RuntimeError("server exited during startup")
            await asyncio.sleep(0.005)
        self.base_url = f"http://{self._host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class SandboxServer(InProcessServer):
    """The sandbox provider served in-process: ``base_url = await SandboxServer(config).start()``."""

    def __init__(
        self, config: SandboxConfig | None = None, *, port: int = 0, host: str = "127.0.0.1"
    ) -> None:
        app = build_sandbox_app(config or SandboxConfig())
        super().__init__(app, port=port, host=host)
        self.state: SandboxState = app.state.sandbox

    async def stop(self) -> None:
        """Cancel pending settlements and webhook deliveries, release held responses, shut down."""
        # Before uvicorn waits for open requests, so a held response does not delay shutdown.
        await self.state.aclose()
        await super().stop()
