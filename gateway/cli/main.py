"""``commerce-gateway``: serve, migrate, token, project and the operator commands.

Every command stops cleanly on SIGTERM and SIGINT (``gateway.cli.signals``). Beside a
gateway running in embedded mode on the same data directory, the operator commands use
its servers or ask it (``gateway.cli.running``) instead of refusing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import socket
import sys
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import TYPE_CHECKING, Any

from gateway.bootstrap.logging import configure_logging
from gateway.bootstrap.settings import PROJECTORS_NONE, ConfigurationError, Settings
from gateway.cli import catalog as catalog_cli
from gateway.cli import edge as edge_cli
from gateway.cli import signals
from gateway.cli import workers as workers_cli
from gateway.cli.arguments import positive_int, subject
from gateway.cli.outcome import PartlyRefused
from gateway.cli.signals import Interrupted, StopSignals

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("gateway.cli")
# How long a stopping gateway lets in-flight requests finish before cancelling them.
DRAIN_SECONDS = 10.0


class PortInUse(ConfigurationError):
    pass


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {port} on {host} is already in use; pass --port (make run: PORT=) to pick another"
                ) from None
            raise


def _local_url(host: str, port: int) -> str:
    """This gateway's address as a process on the same machine reaches it."""
    reachable = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in reachable:
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}"


def _http_server(config: uvicorn.Config, on_started: Callable[[], None]) -> uvicorn.Server:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            # The CLI routes SIGTERM/SIGINT to handle_exit itself: uvicorn's capture would
            # re-raise the signal after draining, killing the process before the stores stop.
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                on_started()

    return Server(config)


async def _serve(
    stops: StopSignals,
    settings: Settings,
    host: str,
    port: int,
    ephemeral: bool,
    listen_fd: int | None = None,
) -> None:
    import uvicorn

    from gateway.bootstrap.background import start_background
    from gateway.bootstrap.container import build_container
    from gateway.bootstrap.heap import settle_startup_heap
    from gateway.bootstrap.wiring import seed_demo_data, wire
    from gateway.http.app import build_app
    from projections.lease import process_label

    # A worker of ``serve --workers`` accepts on the supervisor's socket.
    listening = None if listen_fd is None else [socket.socket(fileno=listen_fd)]
    if listening is None:
        _check_port(host, port)
    container = await build_container(settings, ephemeral=ephemeral)
    container.leases.holder = process_label("serve")
    seeding: asyncio.Task[bool] | None = None
    try:
        wire(container)
        base_url = _local_url(host, port)
        await start_background(
            container,
            webhook_url=f"{base_url}/webhooks/payments",
            stopping=lambda: stops.received is not None,
        )
        if settings.run_projectors != PROJECTORS_NONE:
            await container.start_projectors(scope=settings.run_projectors)
        if settings.seed_demo:
            # In the background: the gateway answers (with honest freshness) while the catalog loads.
            seeding = asyncio.create_task(seed_demo_data(container), name="seed-demo")
            seeding.add_done_callback(_report_seeding)
        config = uvicorn.Config(
            build_app(container),
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(DRAIN_SECONDS),
            # X-Forwarded-For from these peers only (FORWARDED_ALLOW_IPS; the budgets use the same list).
            proxy_headers=True,
            forwarded_allow_ips=list(settings.edge.forwarded_allow_ips),
            # Refused by the server before it is buffered whole (uvicorn's default is 16 MiB).
            ws_max_size=settings.websocket.max_message_bytes,
        )
        where = f"http://{host}:{port}/graphql"

        def started() -> None:
            if container.embedded is not None:
                container.embedded.publish(gateway_url=base_url)
            log.info("gateway listening", extra={"url": where, "env": settings.env})
            # Listening is not ready: a restart rebuilds its in-memory read models first.
            print(
                f"commerce gateway listening on {where} (ready when /readyz answers 200)",
                file=sys.stderr,
                flush=True,
            )

        server = _http_server(config, started)
        settle_startup_heap()
        with stops.handled_by(lambda signum: server.handle_exit(signum, None)):
            await server.serve(sockets=listening)
        log.info("gateway stopping: requests drained, stopping projectors, jobs and stores")
    finally:
        if seeding is not None:
            seeding.cancel()
            await asyncio.gather(seeding, return_exceptions=True)
        await container.close()
    log.info("gateway stopped")


def _report_seeding(task: asyncio.Task[bool]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("demo data seeding failed", exc_info=error)
    elif task.result():
        log.info("demo data seeded")


async def _project(stops: StopSignals, settings: Settings) -> None:
    from gateway.cli.project import running_projectors

    stop = asyncio.Event()
    async with running_projectors(settings):
        with stops.handled_by(lambda _signum: stop.set()):
            await stop.wait()


async def _migrate(settings: Settings) -> str | None:
    from commands.store.migrate import current_revision
    from gateway.cli.stores import postgres_engine

    async with postgres_engine(settings, run_migrations=True) as engine:
        return await current_revision(engine)


async def _seed(settings: Settings, count: int, seed: int) -> str:
    import time

    from gateway.bootstrap import seed as demo
    from gateway.cli.stores import wired_container

    async with wired_container(settings) as container:
        started = time.perf_counter()
        appended = await demo.seed_catalog(container, demo.demo_catalog(count, seed))
        elapsed = time.perf_counter() - started
    if appended == 0:
        return f"the {count} demo products were already there as given; nothing changed ({elapsed:.1f} s)"
    return f"{count} demo products: {appended} written, {count - appended} already there ({elapsed:.1f} s)"


async def _rebuild(settings: Settings, name: str) -> str:
    import time

    from gateway.cli.running import GatewayAdmin, running_gateway
    from gateway.cli.stores import wired_container

    gateway = running_gateway(settings)
    if gateway is not None:
        # Its projectors are the live ones a rebuild pauses, and its read models may be in its memory.
        return await GatewayAdmin.of(settings, gateway).rebuild(name)
    async with wired_container(settings) as container:
        try:
            runner = container.runner(name)
        except LookupError:
            known = ", ".join(r.name for r in container.runners)
            raise ConfigurationError(f"no projection named {name!r} (known: {known})") from None
        started = time.perf_counter()
        progress = await container.rebuilder.run(runner)
        elapsed = time.perf_counter() - started
    return f"projection {name} rebuilt up to position {progress.copy_position} in {elapsed:.1f} s"


async def _reconcile(settings: Settings) -> str:
    from gateway.bootstrap.background import reconcile_once
    from gateway.cli.running import GatewayAdmin, running_gateway
    from gateway.cli.stores import wired_container

    gateway = running_gateway(settings)
    if settings.payment_provider_url is None:
        if gateway is None:
            raise ConfigurationError(
                "reconcile needs PAYMENT_PROVIDER_URL; the in-process sandbox lives in the serving "
                "gateway, which reconciles in the background"
            )
        # The development sandbox lives in the running gateway: only it can ask the sandbox.
        return _reconciled(await GatewayAdmin.of(settings, gateway).reconcile())
    async with wired_container(settings) as container:
        report = await reconcile_once(container)
    return _reconciled(dict(report.__dict__))


def _reconciled(report: dict[str, int]) -> str:
    return (
        f"payment attempts checked: {report['checked']}, settled: {report['settled']}, "
        f"still unknown: {report['unknown']}, "
        # A gateway of an earlier release answers without it.
        f"never received by the provider (given up later): {report.get('missing', 0)}, "
        f"given up: {report['abandoned']}, failed: {report['failed']}"
    )


def _token(settings: Settings, subject: str, roles: list[str], ttl: int) -> str:
    from gateway.edge import tokens

    if settings.production:
        raise ConfigurationError("development tokens cannot be minted in production")
    return tokens.mint(settings.jwt_secret, subject, roles, ttl)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="commerce-gateway", description="Commerce GraphQL gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway (embedded stores when URLs are unset)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--ephemeral", action="store_true", help="fresh temporary data directory, removed at exit"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="gateway processes on one port (needs every store shared by URL; projectors run once, by lease)",
    )
    serve.add_argument(workers_cli.LISTEN_FD_OPTION, type=int, default=None, help=argparse.SUPPRESS)
    sub.add_parser("migrate", help="apply database migrations")
    token = sub.add_parser("token", help="print a development JWT")
    token.add_argument("--sub", type=subject, required=True, help="the caller's id (customer id, agent name)")
    token.add_argument("--role", action="append", required=True, choices=["customer", "support", "admin"])
    token.add_argument("--ttl", type=positive_int, default=3600, help="seconds until expiry")
    sub.add_parser("project", help="run the projector workers alone")
    sub.add_parser("reconcile", help="settle payment attempts with unknown outcomes by asking the provider")
    seed = sub.add_parser("seed", help="load the demo catalog through the command handlers")
    seed.add_argument("--count", type=positive_int, default=3000)
    seed.add_argument("--seed", type=int, default=20261122, help="random seed (same seed, same catalog)")
    projections = sub.add_parser("projections", help="read-model operations")
    projection_ops = projections.add_subparsers(dest="projection_command", required=True)
    rebuild = projection_ops.add_parser("rebuild", help="rebuild a read model from the ledger")
    rebuild.add_argument("name")
    edge_cli.add_commands(sub)
    catalog_cli.add_commands(sub)
    return parser


def _one_shot(args: argparse.Namespace, settings: Settings) -> Callable[[], Coroutine[Any, Any, str]] | None:
    """The coroutine of a command that prints one answer, or None for the long-running ones."""

    async def revision() -> str:
        return f"database at revision {await _migrate(settings)}"

    commands: dict[str, Callable[[], Coroutine[Any, Any, str]]] = {
        "migrate": revision,
        "reconcile": lambda: _reconcile(settings),
        "seed": lambda: _seed(settings, args.count, args.seed),
        "projections": lambda: _rebuild(settings, args.name),
    }
    if args.command in edge_cli.COMMANDS:
        return lambda: edge_cli.execute(args, settings)
    if args.command in catalog_cli.COMMANDS:
        return lambda: catalog_cli.execute(args, settings)
    return commands.get(args.command)


def _log_level(command: str, settings: Settings) -> str:
    """Processes log at LOG_LEVEL; a one-shot command prints its answer, and only warnings
    and errors beside it unless LOG_LEVEL asks for more."""
    if command in {"serve", "project"} or "LOG_LEVEL" in os.environ:
        return settings.log_level
    return "WARNING"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(_log_level(args.command, settings))
        if args.command == "serve" and args.workers != 1:
            workers_cli.check_shareable(settings, args.workers)
            _check_port(args.host, args.port)
            with contextlib.suppress(Interrupted):
                return signals.run(
                    lambda stops: workers_cli.supervise(stops, settings, args.host, args.port, args.workers)
                )
            return 0
        if args.command == "serve":
            with contextlib.suppress(Interrupted):  # a signal during start-up: stopped cleanly
                signals.run(
                    lambda stops: _serve(
                        stops,
                        settings,
                        args.host,
                        args.port,
                        args.ephemeral,
                        getattr(args, "listen_fd", None),
                    )
                )
        elif args.command == "project":
            with contextlib.suppress(Interrupted):
                signals.run(lambda stops: _project(stops, settings))
        elif args.command == "token":
            print(_token(settings, args.sub, args.role, args.ttl))
        else:
            command = _one_shot(args, settings)
            assert command is not None, args.command
            print(signals.run(lambda _stops: command()))
    except Interrupted as exc:
        print(f"commerce-gateway: {exc}", file=sys.stderr)
        return exc.exit_code
    except PartlyRefused as refused:
        print(refused.report)
        return refused.EXIT_CODE
    except ConfigurationError as exc:
        print(f"commerce-gateway: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"commerce-gateway: {exc}", file=sys.stderr)
        return 2
    return 0
