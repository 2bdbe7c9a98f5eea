"""Alembic run on a test's own connection (``await conn.run_sync(...)``)."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from commands.store.migrate import MIGRATIONS_DIR


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def migrate(revision: str) -> Callable[[Connection], None]:
    """Up to ``head``, or down to ``revision``."""

    def run(connection: Connection) -> None:
        if revision == "head":
            command.upgrade(_config(connection), revision)
        else:
            command.downgrade(_config(connection), revision)

    return run


def down_and_up(revision: str) -> Callable[[Connection], None]:
    """Down to ``revision``, then up to ``head`` again."""

    def run(connection: Connection) -> None:
        command.downgrade(_config(connection), revision)
        command.upgrade(_config(connection), "head")

    return run
