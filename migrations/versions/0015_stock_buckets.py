"""Stock buckets: a hot SKU's stock in several rows, so its buyers do not queue on one row.

``inventory_items`` is keyed by (sku, bucket); bucket 0 is the row every SKU had, and a SKU
flagged hot (``inventory_hot_skus``) has rows 1..n-1 too, each with its own on-hand, reserved,
CHECK and ledger stream (``inventory-<sku>~<b>``). A reservation row names the bucket it took
from. See ``docs/scaling.md`` section 8.

Rolling deploys: a process of the release before this one changes stock with ``WHERE sku = $1``,
which on a SKU in buckets would touch every bucket row. Flag no SKU (``inventorySetBuckets``)
until every process runs this release; until then every SKU has its one row and old and new
code agree.

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
    # The foreign key is checked against existing rows in a step of its own, which takes no lock
    # that blocks writers (its NOT VALID form only checks rows written from now on).
    op.execute(
        "ALTER TABLE inventory_reservations ADD COLUMN bucket smallint NOT NULL DEFAULT 0, "
        "ADD CONSTRAINT inventory_reservations_sku_fkey FOREIGN KEY (sku, bucket) "
        "REFERENCES inventory_items (sku, bucket) NOT VALID, "
        "ADD CONSTRAINT inventory_reservations_order_sku UNIQUE (order_id, sku, bucket)"
    )
    op.execute("ALTER TABLE inventory_reservations VALIDATE CONSTRAINT inventory_reservations_sku_fkey")
    # The rebalancing sweep finds the SKUs in buckets without reading every stock row.
    op.execute("CREATE INDEX inventory_items_bucketed ON inventory_items (sku) WHERE bucket > 0")
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
    # Only once every SKU is back in one row: its other buckets given back (inventorySetBuckets
    # with buckets: 1 moves their free units to bucket 0; held units come back as orders ship or
    # are released, and the sweep moves them too). Refused otherwise: nothing is merged silently.
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM inventory_items WHERE bucket > 0 AND (on_hand > 0 OR reserved > 0)) THEN
                RAISE EXCEPTION 'stock is still spread over buckets: give every SKU one bucket '
                    '(inventorySetBuckets with buckets: 1) and let its other buckets empty first';
            END IF;
        END $$
        """
    )
    op.execute("DROP INDEX inventory_items_bucketed")
    op.execute("DROP TABLE inventory_hot_skus")
    op.execute("ALTER TABLE inventory_reservations DROP CONSTRAINT inventory_reservations_sku_fkey")
    op.execute("ALTER TABLE inventory_reservations DROP CONSTRAINT inventory_reservations_order_sku")
    # An order's line taken from several buckets left one reservation row per bucket: one per
    # (order, SKU, status) again, the quantities added up (the kept row is the earliest).
    op.execute(
        """
        WITH merged AS (
            SELECT (array_agg(id ORDER BY created_at, id))[1] AS kept, order_id, sku, status,
                   sum(quantity) AS quantity
            FROM inventory_reservations GROUP BY order_id, sku, status HAVING count(*) > 1
        ),
        grown AS (
            UPDATE inventory_reservations AS r SET quantity = m.quantity FROM merged AS m WHERE r.id = m.kept
        )
        DELETE FROM inventory_reservations AS r USING merged AS m
        WHERE r.order_id = m.order_id AND r.sku = m.sku AND r.status = m.status AND r.id <> m.kept
        """
    )
    op.execute("DELETE FROM inventory_items WHERE bucket > 0")
    op.execute("ALTER TABLE inventory_reservations DROP COLUMN bucket")
    op.execute("ALTER TABLE inventory_items DROP CONSTRAINT inventory_items_pkey, ADD PRIMARY KEY (sku)")
    op.execute("ALTER TABLE inventory_items DROP CONSTRAINT inventory_items_bucket_range, DROP COLUMN bucket")
    # Fails only for an order whose reservations of one SKU are in different states, which no
    # release writes (they move together); such data needs a look before going back.
    op.execute(
        "ALTER TABLE inventory_reservations "
        "ADD CONSTRAINT inventory_reservations_sku_fkey FOREIGN KEY (sku) REFERENCES inventory_items (sku), "
        "ADD CONSTRAINT inventory_reservations_order_sku UNIQUE (order_id, sku)"
    )
