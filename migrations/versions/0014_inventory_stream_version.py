"""``inventory_items.stream_version``: the version of the SKU's ledger stream, kept on its row.

Every inventory write changes the SKU's row and appends to ``inventory-<sku>`` in the same
transaction. The row's UPDATE now also counts the stream's version, so the append needs no
look at the ledger (whose snapshot, under READ COMMITTED, can predate the row lock the UPDATE
waited for) and can go in the UPDATE's own statement: one round trip fewer while the row is
locked. Existing rows start at their stream's current version.

Revision ID: 0014_inventory_stream_version
Revises: 0013_pricing_view
"""

from alembic import op

revision = "0014_inventory_stream_version"
down_revision = "0013_pricing_view"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE inventory_items ADD COLUMN IF NOT EXISTS stream_version bigint NOT NULL DEFAULT 0"
    )
    op.execute(
        """
        UPDATE inventory_items AS i SET stream_version = l.version
        FROM (
            SELECT stream_id, max(stream_version) AS version FROM ledger_events
            WHERE stream_type = 'inventory' GROUP BY stream_id
        ) AS l
        WHERE l.stream_id = 'inventory-' || i.sku
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE inventory_items DROP COLUMN IF EXISTS stream_version")
