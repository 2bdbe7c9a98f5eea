"""Rebuild copies of a single-table PostgreSQL read model: made beside the live table, shaped
after it, and swapped in under its name."""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_GENERATION = re.compile(r"^[a-z0-9_]{1,40}$")


def copy_name(live: str, generation: str) -> str:
    """The copy's table name; a generation is interpolated into SQL, so it is checked first."""
    if not _GENERATION.match(generation):
        raise ValueError(f"bad rebuild generation {generation!r}")
    return f"{live}_{generation}"


async def create_like(engine: AsyncEngine, table: str, live: str) -> None:
    """The live table comes from the migrations; a copy is shaped after it."""
    if table != live:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE IF NOT EXISTS {table} (LIKE {live} INCLUDING ALL)"))


async def swap_in(engine: AsyncEngine, live: str, copy: str) -> None:
    """The copy under the live name, in one transaction (readers wait, never miss)."""
    retired = f"{copy}_retired"
    async with engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {live} RENAME TO {retired}"))
        await conn.execute(text(f"ALTER TABLE {copy} RENAME TO {live}"))
        await conn.execute(text(f"DROP TABLE {retired}"))
