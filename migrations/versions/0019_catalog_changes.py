"""A partial index of the ledger rows that change what the catalog shows.

Product events, and stock events that may change whether a stock bucket has stock (a
reservation or a shipment that leaves its bucket with stock does not): the search read model's
version is the last of them (``commands/events/catalog_changes.py``), found in one index probe
however many purchases and cart writes came after it. The condition is a frozen copy of
``CATALOG_CHANGES`` as of this revision. On a large ledger, build it beforehand with
``CREATE INDEX CONCURRENTLY`` and the same definition: this revision then finds it there.

Revision ID: 0019_catalog_changes
Revises: 0018_payment_missing
"""

from alembic import op

revision = "0019_catalog_changes"
down_revision = "0018_payment_missing"
branch_labels = None
depends_on = None

CATALOG_CHANGES = (
    "type IN ('ProductCreated', 'ProductUpdated', 'ReservationCommitted', 'ReservationExpired', "
    "'StockAdjusted', 'StockRebalanced', 'StockReleased', 'StockReserved', 'StockSet', 'StockShipped') "
    "AND NOT (type IN ('ReservationCommitted', 'StockReserved', 'StockShipped') "
    "AND (data ->> 'available')::integer > 0)"
)


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ledger_events_catalog_changes ON ledger_events (tx_id, position) "
        f"WHERE {CATALOG_CHANGES}"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ledger_events_catalog_changes")
