"""The benchmark's count of rows PostgreSQL read: differences per table, per unit."""

from __future__ import annotations

from benchmarks.pg_reads import TableReads


def test_reads_since_a_point_count_only_what_happened_after_it() -> None:
    before = TableReads(10, 1_000, 500, {"ledger_events": 900, "order_view": 100}, 50, 2, 40)
    after = TableReads(
        16, 7_000, 900, {"ledger_events": 900, "order_view": 4_100, "timeline_owners": 2_000}, 1_050, 12, 640
    )
    spent = after.since(before)
    assert (spent.seq_scans, spent.seq_rows, spent.index_rows) == (6, 6_000, 400)
    # A table not scanned in between is left out; one new since is counted whole.
    assert spent.seq_rows_by_table == {"order_view": 4_000, "timeline_owners": 2_000}
    assert spent.most_scanned(1) == [("order_view", 4_000)]
    assert (spent.commits, spent.rollbacks, spent.wal_syncs) == (1_000, 10, 600)
    assert spent.per(200) == {
        "seq_scans": 0.03,
        "seq_rows": 30.0,
        "index_rows": 2.0,
        "commits": 5.0,
        "rollbacks": 0.05,
        "wal_syncs": 3.0,
    }


def test_per_unit_of_no_units_does_not_divide_by_zero() -> None:
    assert TableReads(2, 40, 8, {}).per(0) == {
        "seq_scans": 2.0,
        "seq_rows": 40.0,
        "index_rows": 8.0,
        "commits": 0.0,
        "rollbacks": 0.0,
        "wal_syncs": 0.0,
    }
