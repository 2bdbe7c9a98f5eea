"""The code's table definitions describe exactly the schema the migrations build.

Alembic's comparison covers tables, columns, types, nullability, primary and
foreign keys, unique constraints and indexes, but not the WHERE of partial
indexes; that is checked by building the code's tables in a scratch schema and
comparing PostgreSQL's own rendering of every index. Left out of the Table
definitions on purpose, and compared by neither: CHECK constraints, server
defaults, the ``order_numbers`` sequence and the ledger's append-only trigger
and its function (database behaviour the code never queries through Table objects).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from commands.store import tables as write_side
from commands.store.migrate import MIGRATIONS_DIR, current_revision, head_revision
from gateway.bootstrap.settings import Settings
from gateway.edge import tables as edge
from projections import tables as read_models

CODE_METADATA: list[MetaData] = [write_side.metadata, edge.metadata, read_models.metadata]
SCRATCH_SCHEMA = "from_code"
# ledger_events.tx_id is xid8, which SQLAlchemy cannot reflect; Alembic skips its type.
pytestmark = pytest.mark.filterwarnings("ignore:Did not recognize type 'xid8'")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    assert settings.database_url is not None
    engine = create_async_engine(settings.database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def _diffs(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, CODE_METADATA))  # type: ignore[arg-type]


async def test_migrated_schema_matches_table_definitions(engine: AsyncEngine) -> None:
    # The settings fixture's database is a clone of a template migrated to head.
    assert await current_revision(engine) == head_revision()
    async with engine.connect() as conn:
        assert await conn.run_sync(_diffs) == []


async def test_index_definitions_match_as_postgresql_renders_them(engine: AsyncEngine) -> None:
    def create_from_code(connection: Connection) -> None:
        connection.execute(text(f"CREATE SCHEMA {SCRATCH_SCHEMA}"))
        scratch = connection.execution_options(schema_translate_map={None: SCRATCH_SCHEMA})
        for metadata in CODE_METADATA:
            metadata.create_all(scratch)

    async with engine.begin() as conn:
        await conn.run_sync(create_from_code)
    code_tables = [t.name for metadata in CODE_METADATA for t in metadata.sorted_tables]
    async with engine.connect() as conn:
        migrated = await _index_definitions(conn, "public", code_tables)
        from_code = await _index_definitions(conn, SCRATCH_SCHEMA, code_tables)
    assert "WHERE (revoked_at IS NULL)" in migrated["api_clients_active_name"]
    assert from_code == migrated


async def _index_definitions(conn: AsyncConnection, schema: str, tables: list[str]) -> dict[str, str]:
    rows = await conn.execute(
        text(
            "SELECT indexname, replace(indexdef, schemaname || '.', '') AS definition FROM pg_indexes "
            "WHERE schemaname = :schema AND tablename = ANY(:tables)"
        ),
        {"schema": schema, "tables": tables},
    )
    return {row.indexname: row.definition for row in rows}


async def test_the_comparison_sees_index_and_type_drift(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX order_view_status"))
        await conn.execute(text("ALTER TABLE timeline_owners ALTER COLUMN kind TYPE varchar(9)"))
    async with engine.connect() as conn:
        diffs = await conn.run_sync(_diffs)
    found = {(d[0], d[1].name) if d[0] == "add_index" else (d[0][0], d[0][3]) for d in diffs}
    assert found == {("add_index", "order_view_status"), ("modify_type", "kind")}


async def test_alembic_env_compares_against_every_table_definition(engine: AsyncEngine) -> None:
    """``alembic check`` through migrations/env.py: fails when env.py has no target metadata
    (autogenerate refuses) or when any table is missing from it (a remove_table diff)."""

    def check(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.check(config)

    async with engine.connect() as conn:
        await conn.run_sync(check)
