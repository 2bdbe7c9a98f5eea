"""Run and inspect Alembic migrations over an async engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade to head. Serialized by an advisory lock so two processes never race."""

    def upgrade(connection: Connection) -> None:
        connection.exec_driver_sql("SELECT pg_advisory_lock(7254001)")
        try:
            command.upgrade(_config(connection), "head")
        finally:
            connection.exec_driver_sql("SELECT pg_advisory_unlock(7254001)")

    async with engine.connect() as conn:
        await conn.run_sync(upgrade)
        await conn.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)
