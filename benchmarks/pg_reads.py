"""How many rows PostgreSQL read for a load, and how many transactions it committed and WAL
flushes it made: counts of work, steadier than CPU seconds.

``pg_stat_user_tables`` counts, per table, the sequential scans and the rows they read,
and the rows fetched through indexes. Read before and after a load, their difference per
operation does not move with the machine's speed the way CPU time does, so a statement
that scans a table it should look up shows plainly (and stays fixed once fixed). Backends
report their counts at most once a second while busy, and a backend that goes idle within
that second reports its last ones ten seconds later (PostgreSQL 15 and later): ``read``
with ``settle`` waits that out, so that every count of what came before is in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

# An idle backend's unreported counts are flushed after PGSTAT_IDLE_INTERVAL (10 s).
FLUSH_SECONDS = 10.5
TABLE_READS_SQL = (
    "SELECT relname, coalesce(seq_scan, 0) AS seq_scan, coalesce(seq_tup_read, 0) AS seq_rows, "
    "coalesce(idx_tup_fetch, 0) AS index_rows FROM pg_stat_user_tables"
)
# Transactions of this database (every client's, the benchmark's own reads included) and the
# server's WAL flushes (each a wait on the disk; commits flushed together count once).
COMMITS_SQL = (
    "SELECT d.xact_commit AS commits, d.xact_rollback AS rollbacks, w.wal_sync AS wal_syncs "
    "FROM pg_stat_database AS d, pg_stat_wal AS w WHERE d.datname = current_database()"
)


@dataclass(frozen=True)
class TableReads:
    seq_scans: int
    seq_rows: int
    index_rows: int
    # Rows read by sequential scans, per table (the tables a regression would name).
    seq_rows_by_table: dict[str, int]
    commits: int = 0
    rollbacks: int = 0
    wal_syncs: int = 0

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
            self.commits - before.commits,
            self.rollbacks - before.rollbacks,
            self.wal_syncs - before.wal_syncs,
        )

    def per(self, operations: int) -> dict[str, float]:
        n = max(1, operations)
        return {
            "seq_scans": round(self.seq_scans / n, 2),
            "seq_rows": round(self.seq_rows / n, 1),
            "index_rows": round(self.index_rows / n, 1),
            "commits": round(self.commits / n, 2),
            "rollbacks": round(self.rollbacks / n, 2),
            "wal_syncs": round(self.wal_syncs / n, 2),
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
        work = await conn.fetchrow(COMMITS_SQL)
    finally:
        await conn.close()
    return TableReads(
        sum(r["seq_scan"] for r in rows),
        sum(r["seq_rows"] for r in rows),
        sum(r["index_rows"] for r in rows),
        {r["relname"]: int(r["seq_rows"]) for r in rows},
        int(work["commits"]),
        int(work["rollbacks"]),
        int(work["wal_syncs"]),
    )
