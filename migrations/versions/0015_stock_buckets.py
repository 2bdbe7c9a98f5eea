"""Stock buckets: a hot SKU's stock in several rows, so its buyers do not queue on one row.

``inventory_items`` is keyed by (sku, bucket); bucket 0 is the row every SKU had, and a SKU
flagged hot (``inventory_hot_skus``) has rows 1..n-1 too, each with its own on-hand, reserved,
CHECK and ledger stream (``inventory-<sku>~<b>``). A reservation row names the bucket it took
from. See ``docs/scaling.md`` section 8.

Revision ID: 0015_stock_buckets
Revises: 0014_inventory_stream_version
"""

from alembic import op

revision = "0015_stock_buckets"
down_revision = "0014_inventory_stream_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE inventory_reservations DROP CONSTRAINT inventory_reservations_sku_fkey")
    op.execute("ALTER TABLE inventory_reservations DROP CONSTRAINT inventory_reservations_order_sku")
    op.execute(
        "ALTER TABLE inventory_items ADD COLUMN bucket smallint NOT NULL DEFAULT 0, "
        "ADD CONSTRAINT inventory_items_bucket_range CHECK (bucket >= 0 AND bucket < 16), "
        "DROP CONSTRAINT inventory_items_pkey, ADD PRIMARY KEY (sku, bucket)"
    )
    op.execute(
        "ALTER TABLE inventory_reservations ADD COLUMN bucket smallint NOT NULL DEFAULT 0, "
        "ADD CONSTRAINT inventory_reservations_sku_fkey FOREIGN KEY (sku, bucket) "
        "REFERENCES inventory_items (sku, bucket), "
        "ADD CONSTRAINT inventory_reservations_order_sku UNIQUE (order_id, sku, bucket)"
    )
    op.execute(
        """
        CREATE TABLE inventory_hot_skus (
            sku varchar(64) PRIMARY KEY,
            buckets smallint NOT NULL CHECK (buckets >= 2 AND buckets <= 16),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    # Only possible once every SKU is back in one bucket (its other rows empty and deleted).
    op.execute("DROP TABLE inventory_hot_skus")
    op.execute("ALTER TABLE inventory_reservations DROP CONSTRAINT inventory_reservations_sku_fkey")
    op.execute("ALTER TABLE inventory_reservations DROP CONSTRAINT inventory_reservations_order_sku")
    op.execute("DELETE FROM inventory_items WHERE bucket > 0 AND on_hand = 0 AND reserved = 0")
    op.execute("ALTER TABLE inventory_reservations DROP COLUMN bucket")
    op.execute("ALTER TABLE inventory_items DROP CONSTRAINT inventory_items_pkey, ADD PRIMARY KEY (sku)")
    op.execute("ALTER TABLE inventory_items DROP CONSTRAINT inventory_items_bucket_range, DROP COLUMN bucket")
    op.execute(
        "ALTER TABLE inventory_reservations "
        "ADD CONSTRAINT inventory_reservations_sku_fkey FOREIGN KEY (sku) REFERENCES inventory_items (sku), "
        "ADD CONSTRAINT inventory_reservations_order_sku UNIQUE (order_id, sku)"
    )
