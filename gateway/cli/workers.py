"""``serve --workers N``: N gateway processes sharing one listening socket.

The supervisor binds the port, applies the migrations once, and starts N ``serve``
processes that accept on the inherited socket. Every worker runs the projectors; the
projection leases (``projections/lease.py``) let exactly one process apply each projection,
and a standby takes over within seconds if its owner dies. Only the first worker loads the
demo data and runs the periodic jobs (payment reconciliation, the reservation sweep, stock rebalancing). A
signal to the supervisor stops every worker cleanly (each drains its requests); a worker
that exits on its own stops the others, and the supervisor exits non-zero.

Refused when any store would live inside one process: in embedded mode (a URL unset), with
the MongoDB stand-in (``mongomock://``) or the in-memory search engine, the other workers
could neither see nor share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys

from gateway.bootstrap.settings import ConfigurationError, Settings
from gateway.cli.signals import StopSignals

log = logging.getLogger("gateway.cli")
STOP_SECONDS = 30.0
LISTEN_FD_OPTION = "--listen-fd"


def worker_environment(index: int) -> dict[str, str]:
    """Worker ``index``'s environment: the supervisor migrated already; only the first worker
    loads the demo data and runs the periodic jobs (a worker that exits stops the group, so
    the jobs never go unrun)."""
    env = dict(os.environ, MIGRATE_ON_START="0")
    if index > 0:
        env.update(SEED_DEMO_DATA="0", BACKGROUND_JOBS="0")
    return env


def check_shareable(settings: Settings, workers: int) -> None:
    if workers < 1:
        raise ConfigurationError("--workers must be at least 1")
    if workers == 1:
        return
    unset = [
        name
        for name, value in (
            ("DATABASE_URL", settings.database_url),
            ("REDIS_URL", settings.redis_url),
            ("ELASTICSEARCH_URL", settings.elasticsearch_url),
            ("MONGODB_URL", settings.mongodb_url),
        )
        if value is None
    ]
    if unset:
        verb = "is" if len(unset) == 1 else "are"
        raise ConfigurationError(
            f"serve --workers {workers} needs every store shared by URL, and {', '.join(unset)} "
            f"{verb} unset: embedded stores (the MongoDB stand-in and the search engine in particular) "
            "live inside one process, where other workers cannot reach them. Set the URLs of real "
            "stores, or serve with one worker."
        )
    in_memory = sorted(settings.volatile_stores)
    if in_memory:
        raise ConfigurationError(
            f"serve --workers {workers} cannot share {' and '.join(in_memory)}: the configured store "
            "lives in one process's memory (MONGODB_URL=mongomock://, ELASTICSEARCH_IN_MEMORY). "
            "Point it at a real server, or serve with one worker."
        )


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def supervise(stops: StopSignals, settings: Settings, host: str, port: int, workers: int) -> int:
    """Run ``workers`` serve processes on one socket until a signal or a worker's exit."""
    if settings.migrate_on_start:
        from gateway.cli.stores import postgres_engine

        async with postgres_engine(settings, run_migrations=True):
            pass
    sock = listening_socket(host, port)
    children: list[asyncio.subprocess.Process] = []
    stopping = asyncio.Event()
    try:
        for index in range(workers):
            env = worker_environment(index)
            args = ["-m", "gateway.cli", "serve", "--host", host, "--port", str(port)]
            children.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    *args,
                    LISTEN_FD_OPTION,
                    str(sock.fileno()),
                    env=env,
                    pass_fds=[sock.fileno()],
                )
            )
        print(
            f"commerce gateway: {workers} workers on http://{host}:{port}/graphql",
            file=sys.stderr,
            flush=True,
        )
        waits = [asyncio.ensure_future(child.wait()) for child in children]
        stop = asyncio.ensure_future(stopping.wait())
        with stops.handled_by(lambda _signum: stopping.set()):
            done, _ = await asyncio.wait([*waits, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if stop not in done:
            log.error("a worker exited on its own; stopping the others")
        await _stop(children)
        return 0 if stop in done and all(child.returncode == 0 for child in children) else 1
    finally:
        sock.close()
        await _stop(children)


async def _stop(children: list[asyncio.subprocess.Process]) -> None:
    for child in children:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            await asyncio.wait_for(child.wait(), STOP_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
