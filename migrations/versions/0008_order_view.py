"""The ``order_view`` read model the ``orders`` projection maintains.

Same DDL as ``projections.orders.table_ddl`` (which also builds rebuild copies).

Revision ID: 0008_order_view
Revises: 0007_checkout
"""

from alembic import op

revision = "0008_order_view"
down_revision = "0007_checkout"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS order_view (
            order_id text NOT NULL,
            number text NOT NULL,
            customer_id text,
            email text NOT NULL,
            cart_id text NOT NULL,
            status varchar(32) NOT NULL,
            payment_status varchar(16) NOT NULL,
            payment_amount numeric NOT NULL,
            currency varchar(3) NOT NULL,
            provider_reference text,
            lines jsonb NOT NULL,
            subtotal numeric NOT NULL,
            total numeric NOT NULL,
            shipping_address jsonb NOT NULL,
            history jsonb NOT NULL,
            stream_version integer NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            CONSTRAINT order_view_pkey PRIMARY KEY (order_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS order_view_customer_created "
        "ON order_view (customer_id, created_at DESC, order_id)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS order_view_status ON order_view (status, created_at DESC, order_id)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS order_view")
