"""Support timeline read model.

Revision ID: 0009_timeline
Revises: 0008_order_view
"""

from alembic import op

revision = "0009_timeline"
down_revision = "0008_order_view"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE timeline_entries (
            position bigint PRIMARY KEY,
            customer_id varchar(200),
            cart_id varchar(200),
            order_id varchar(200),
            kind varchar(16) NOT NULL,
            type varchar(100) NOT NULL,
            summary text NOT NULL,
            data jsonb NOT NULL,
            at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX timeline_entries_customer ON timeline_entries (customer_id, position DESC)")
    op.execute("CREATE INDEX timeline_entries_cart ON timeline_entries (cart_id) WHERE customer_id IS NULL")
    op.execute("CREATE INDEX timeline_entries_order ON timeline_entries (order_id) WHERE customer_id IS NULL")
    op.execute(
        """
        CREATE TABLE timeline_owners (
            kind varchar(8) NOT NULL,
            key varchar(200) NOT NULL,
            customer_id varchar(200) NOT NULL,
            PRIMARY KEY (kind, key)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE timeline_owners")
    op.execute("DROP TABLE timeline_entries")
