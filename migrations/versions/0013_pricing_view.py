"""The ``pricing_view`` read model: money configuration and variant tax categories, for quoting carts.

Revision ID: 0013_pricing_view
Revises: 0012_order_totals
"""

from alembic import op

revision = "0013_pricing_view"
down_revision = "0012_order_totals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pricing_view (
            kind varchar(32) NOT NULL,
            key varchar(200) NOT NULL,
            data jsonb NOT NULL,
            position bigint NOT NULL,
            updated_at timestamptz NOT NULL,
            CONSTRAINT pricing_view_pkey PRIMARY KEY (kind, key)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS pricing_view")
