"""The inventory read model per stock bucket: ``inventory_view`` keyed by (sku, bucket).

Each bucket row of ``inventory_items`` (0015_stock_buckets) records its own ledger stream
(``inventory-<sku>`` for bucket 0, ``inventory-<sku>~<b>`` for the others), and each event
carries its bucket's numbers only; the view keeps one row per stream, guarded by that stream's
version, and readers add a SKU's rows up. Existing rows are bucket 0's.

A rebuild (``projections/table_copies.py``) renames a copy in, whose primary key keeps the
copy's name: the key is found by what it is, not by name.

Revision ID: 0016_inventory_view_buckets
Revises: 0015_stock_buckets
"""

from alembic import op

revision = "0016_inventory_view_buckets"
down_revision = "0015_stock_buckets"
branch_labels = None
depends_on = None

_REPLACE_PRIMARY_KEY = """
DO $$
DECLARE
    pkey text := (
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'inventory_view'::regclass AND contype = 'p'
    );
BEGIN
    EXECUTE format('ALTER TABLE inventory_view DROP CONSTRAINT %I', pkey);
    ALTER TABLE inventory_view ADD CONSTRAINT inventory_view_pkey PRIMARY KEY ({columns});
END
$$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE inventory_view ADD COLUMN bucket smallint NOT NULL DEFAULT 0")
    op.execute(_REPLACE_PRIMARY_KEY.format(columns="sku, bucket"))


def downgrade() -> None:
    # The code before this revision reads only bucket 0's stream (``inventory-<sku>``), and
    # 0015's downgrade needs every SKU back in one bucket: the other rows are dropped.
    op.execute("DELETE FROM inventory_view WHERE bucket > 0")
    op.execute(_REPLACE_PRIMARY_KEY.format(columns="sku"))
    op.execute("ALTER TABLE inventory_view DROP COLUMN bucket")
