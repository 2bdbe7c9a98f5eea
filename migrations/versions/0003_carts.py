"""Cart ownership index the cart commands own.

The cart itself lives in the ledger (stream ``cart-<id>``); this table lets
the write side find a cart's owner and "the customer's active cart" inside
the command's transaction, without consulting the lagging read model.

Revision ID: 0003_carts
Revises: 0002_catalog
"""

from alembic import op

revision = "0003_carts"
down_revision = "0002_catalog"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE customer_carts (
            cart_id varchar(64) PRIMARY KEY,
            customer_id varchar(200),
            status varchar(16) NOT NULL DEFAULT 'ACTIVE'
                CHECK (status IN ('ACTIVE', 'MERGED', 'CHECKED_OUT')),
            merged_into varchar(64),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX customer_carts_active ON customer_carts (customer_id, status, updated_at DESC)")


def downgrade() -> None:
    op.execute("DROP TABLE customer_carts")
