"""``commerce-gateway``: serve, migrate, token, project."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal
import socket
import sys
from collections.abc import Sequence

from gateway.bootstrap.logging import configure_logging
from gateway.bootstrap.settings import ConfigurationError, Settings
from gateway.cli import edge as edge_cli

log = logging.getLogger("gateway.cli")


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
                    f"port {port} on {host} is already in use; pass --port to pick another"
                ) from None
            raise


async def _serve(settings: Settings, host: str, port: int, ephemeral: bool) -> None:
    import uvicorn

    from gateway.bootstrap.background import local_webhook_url, start_background
    from gateway.bootstrap.container import build_container
    from gateway.bootstrap.wiring import seed_demo_data, wire
    from gateway.http.app import build_app

    _check_port(host, port)
    container = await build_container(settings, ephemeral=ephemeral)
    try:
        wire(container)
        await start_background(container, webhook_url=local_webhook_url(host, port))
        if settings.run_projectors:
            await container.start_projectors()
        if settings.seed_demo:
            # In the background: the gateway answers (with honest freshness) while the catalog loads.
            seeding = asyncio.create_task(seed_demo_data(container), name="seed-demo")
            seeding.add_done_callback(_report_seeding)
        app = build_app(container)
        config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_config=None, access_log=False)
        server = uvicorn.Server(config)
        where = f"http://{host}:{port}/graphql"
        log.info("gateway listening", extra={"url": where, "env": settings.env})
        print(f"commerce gateway ready on {where}", file=sys.stderr, flush=True)
        await server.serve()
    finally:
        await container.close()


def _report_seeding(task: asyncio.Task[bool]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("demo data seeding failed", exc_info=error)
    elif task.result():
        log.info("demo data seeded")


async def _project(settings: Settings) -> None:
    from gateway.bootstrap.container import build_container
    from gateway.bootstrap.wiring import wire

    container = await build_container(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        wire(container)
        await container.start_projectors()
        log.info("projectors running", extra={"projections": [r.name for r in container.runners]})
        await stop.wait()
    finally:
        await container.close()


async def _migrate(settings: Settings) -> str | None:
    from commands.store.migrate import current_revision
    from gateway.cli.stores import postgres_engine

    async with postgres_engine(settings, run_migrations=True) as engine:
        return await current_revision(engine)


async def _seed(settings: Settings, count: int, seed: int) -> str:
    import time

    from gateway.bootstrap import seed as demo
    from gateway.bootstrap.container import build_container
    from gateway.bootstrap.wiring import wire

    container = await build_container(settings)
    try:
        wire(container)
        started = time.perf_counter()
        appended = await demo.seed_catalog(container, demo.demo_catalog(count, seed))
        elapsed = time.perf_counter() - started
    finally:
        await container.close()
    return f"{count} products upserted ({appended} changed) in {elapsed:.1f} s"


async def _rebuild(settings: Settings, name: str) -> str:
    import time

    from gateway.bootstrap.container import build_container
    from gateway.bootstrap.wiring import wire

    container = await build_container(settings)
    try:
        wire(container)
        try:
            runner = container.runner(name)
        except LookupError:
            known = ", ".join(r.name for r in container.runners)
            raise ConfigurationError(f"no projection named {name!r} (known: {known})") from None
        started = time.perf_counter()
        progress = await container.rebuilder.run(runner)
        elapsed = time.perf_counter() - started
    finally:
        await container.close()
    return f"projection {name} rebuilt up to position {progress.copy_position} in {elapsed:.1f} s"


async def _reconcile(settings: Settings) -> str:
    from gateway.bootstrap.background import reconcile_once
    from gateway.bootstrap.container import build_container
    from gateway.bootstrap.wiring import wire

    if settings.payment_provider_url is None:
        raise ConfigurationError(
            "reconcile needs PAYMENT_PROVIDER_URL; the in-process sandbox lives in the serving gateway, "
            "which reconciles in the background"
        )
    container = await build_container(settings)
    try:
        wire(container)
        report = await reconcile_once(container)
    finally:
        await container.close()
    return (
        f"payment attempts checked: {report.checked}, settled: {report.settled}, "
        f"still unknown: {report.unknown}, given up: {report.abandoned}, failed: {report.failed}"
    )


def _token(settings: Settings, subject: str, roles: list[str], ttl: int) -> str:
    from gateway.edge.auth import JwtAuthenticator

    if settings.production:
        raise ConfigurationError("development tokens cannot be minted in production")
    return JwtAuthenticator(settings.jwt_secret).mint(subject, roles, ttl)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="commerce-gateway", description="Commerce GraphQL gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway (embedded stores when URLs are unset)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--ephemeral", action="store_true", help="fresh temporary data directory, removed at exit"
    )
    sub.add_parser("migrate", help="apply database migrations")
    token = sub.add_parser("token", help="print a development JWT")
    token.add_argument("--sub", required=True)
    token.add_argument("--role", action="append", required=True, choices=["customer", "support", "admin"])
    token.add_argument("--ttl", type=int, default=3600, help="seconds until expiry")
    sub.add_parser("project", help="run the projector workers alone")
    sub.add_parser("reconcile", help="settle payment attempts with unknown outcomes by asking the provider")
    seed = sub.add_parser("seed", help="load the demo catalog through the command handlers")
    seed.add_argument("--count", type=int, default=3000)
    seed.add_argument("--seed", type=int, default=20261122, help="random seed (same seed, same catalog)")
    projections = sub.add_parser("projections", help="read-model operations")
    projection_ops = projections.add_subparsers(dest="projection_command", required=True)
    rebuild = projection_ops.add_parser("rebuild", help="rebuild a read model from the ledger")
    rebuild.add_argument("name")
    edge_cli.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        if args.command == "serve":
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_serve(settings, args.host, args.port, args.ephemeral))
        elif args.command == "migrate":
            print(f"database at revision {asyncio.run(_migrate(settings))}")
        elif args.command == "token":
            print(_token(settings, args.sub, args.role, args.ttl))
        elif args.command == "project":
            asyncio.run(_project(settings))
        elif args.command == "reconcile":
            print(asyncio.run(_reconcile(settings)))
        elif args.command == "seed":
            print(asyncio.run(_seed(settings, args.count, args.seed)))
        elif args.command == "projections":
            print(asyncio.run(_rebuild(settings, args.name)))
        elif args.command in edge_cli.COMMANDS:
            print(edge_cli.run(args, settings))
    except ConfigurationError as exc:
        print(f"commerce-gateway: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"commerce-gateway: {exc}", file=sys.stderr)
        return 2
    return 0

