"""Who set a SKU's bucket count: an admin (``inventorySetBuckets``) or the automatic switch.

``inventory_hot_skus.set_by`` is ``admin`` or ``auto``, and a row may now say one bucket: a SKU
an admin gathered back into one row stays there (the automatic switch spreads only SKUs no
admin decided on). See ``commands/inventory/hot_switch.py``.

Revision ID: 0017_hot_sku_switch
Revises: 0016_inventory_view_buckets
"""

from alembic import op

revision = "0017_hot_sku_switch"
down_revision = "0016_inventory_view_buckets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE inventory_hot_skus "
        "DROP CONSTRAINT inventory_hot_skus_buckets_check, "
        "ADD CONSTRAINT inventory_hot_skus_buckets_check CHECK (buckets >= 1 AND buckets <= 16), "
        "ADD COLUMN set_by varchar(16) NOT NULL DEFAULT 'admin' "
        "CONSTRAINT inventory_hot_skus_set_by_check CHECK (set_by IN ('admin', 'auto'))"
    )
    # SKUs an admin gathered back into one row before this release: their extra rows remain
    # (empty, or holding reservations), but the flag was deleted. Pinned, as they would be now.
    op.execute(
        "INSERT INTO inventory_hot_skus (sku, buckets, set_by) "
        "SELECT DISTINCT sku, 1, 'admin' FROM inventory_items WHERE bucket > 0 ON CONFLICT (sku) DO NOTHING"
    )


def downgrade() -> None:
    # A SKU pinned to one row is simply not flagged in the release before this one. Each migration
    # commits on its own: these deletes stay even if an older step's downgrade then refuses.
    op.execute("DELETE FROM inventory_hot_skus WHERE buckets = 1")
    op.execute(
        "ALTER TABLE inventory_hot_skus "
        "DROP COLUMN set_by, "
        "DROP CONSTRAINT inventory_hot_skus_buckets_check, "
        "ADD CONSTRAINT inventory_hot_skus_buckets_check CHECK (buckets >= 2 AND buckets <= 16)"
    )
