"""How many rows PostgreSQL read for a load: a count of work, steadier than CPU seconds.

``pg_stat_user_tables`` counts, per table, the sequential scans and the rows they read,
and the rows fetched through indexes. Read before and after a load, their difference per
operation does not move with the machine's speed the way CPU time does, so a statement
that scans a table it should look up shows plainly (and stays fixed once fixed). Backends
report their counts at the end of a transaction, at most once a second when busy:
``read`` after a load waits that second out first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

# Backends flush their table counts at most this often (PGSTAT_MIN_INTERVAL, one second).
FLUSH_SECONDS = 1.1
TABLE_READS_SQL = (
    "SELECT relname, coalesce(seq_scan, 0) AS seq_scan, coalesce(seq_tup_read, 0) AS seq_rows, "
    "coalesce(idx_tup_fetch, 0) AS index_rows FROM pg_stat_user_tables"
)


@dataclass(frozen=True)
class TableReads:
    seq_scans: int
    seq_rows: int
    index_rows: int
    # Rows read by sequential scans, per table (the tables a regression would name).
    seq_rows_by_table: dict[str, int]

    def since(self, before: TableReads) -> TableReads:
        by_table = {
            table: rows - before.seq_rows_by_table.get(table, 0)
            for table, rows in self.seq_rows_by_table.items()
        }
        return TableReads(
            self.seq_scans - before.seq_scans,
            self.seq_rows - before.seq_rows,
            self.index_rows - before.index_rows,
            {table: rows for table, rows in by_table.items() if rows},
        )

    def per(self, operations: int) -> dict[str, float]:
        n = max(1, operations)
        return {
            "seq_scans": round(self.seq_scans / n, 2),
            "seq_rows": round(self.seq_rows / n, 1),
            "index_rows": round(self.index_rows / n, 1),
        }

    def most_scanned(self, count: int = 3) -> list[tuple[str, int]]:
        return sorted(self.seq_rows_by_table.items(), key=lambda item: -item[1])[:count]


async def read(connect_kwargs: dict[str, Any], *, settle: bool = False) -> TableReads:
    """The database's counts now; ``settle``: after busy backends have reported theirs."""
    if settle:
        await asyncio.sleep(FLUSH_SECONDS)
    conn = await asyncpg.connect(**connect_kwargs)
    try:
        rows = await conn.fetch(TABLE_READS_SQL)
    finally:
        await conn.close()
    return TableReads(
        sum(r["seq_scan"] for r in rows),
        sum(r["seq_rows"] for r in rows),
        sum(r["index_rows"] for r in rows),
        {r["relname"]: int(r["seq_rows"]) for r in rows},
    )
