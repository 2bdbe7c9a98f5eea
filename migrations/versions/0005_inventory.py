"""Inventory the commands own: stock per SKU and reservations (leases), and the
``inventory_view`` read model the inventory projection maintains.

Revision ID: 0005_inventory
Revises: 0004_edge
"""

from alembic import op

revision = "0005_inventory"
down_revision = "0004_edge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE inventory_items (
            sku varchar(64) PRIMARY KEY,
            on_hand integer NOT NULL,
            reserved integer NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now(),
            -- Never oversell: what is promised can never exceed what is on hand.
            CONSTRAINT inventory_items_reserved_within_on_hand
                CHECK (0 <= reserved AND reserved <= on_hand)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE inventory_reservations (
            id uuid PRIMARY KEY,
            order_id uuid NOT NULL,
            sku varchar(64) NOT NULL REFERENCES inventory_items (sku),
            quantity integer NOT NULL CHECK (quantity > 0),
            status varchar(16) NOT NULL
                CHECK (status IN ('active', 'committed', 'released', 'expired', 'consumed')),
            -- Only active reservations are leases; committed ones no longer expire.
            expires_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT inventory_reservations_order_sku UNIQUE (order_id, sku),
            CONSTRAINT inventory_reservations_active_expires
                CHECK (status <> 'active' OR expires_at IS NOT NULL)
        )
        """
    )
    op.execute(
        "CREATE INDEX inventory_reservations_expiring ON inventory_reservations (expires_at) "
        "WHERE status = 'active'"
    )
    op.execute(
        """
        CREATE TABLE inventory_view (
            sku varchar(64) PRIMARY KEY,
            product_id varchar(64),
            on_hand integer NOT NULL,
            reserved integer NOT NULL,
            available integer NOT NULL,
            stream_version integer NOT NULL,
            updated_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX inventory_view_product ON inventory_view (product_id)")


def downgrade() -> None:
    op.execute("DROP TABLE inventory_view")
    op.execute("DROP TABLE inventory_reservations")
    op.execute("DROP TABLE inventory_items")
