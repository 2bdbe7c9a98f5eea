"""Order view: the money beyond the lines (shipping, discounts, tax lines), null for orders without any.

Revision ID: 0012_order_totals
Revises: 0011_money
"""

from alembic import op

revision = "0012_order_totals"
down_revision = "0011_money"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE order_view ADD COLUMN IF NOT EXISTS totals jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE order_view DROP COLUMN IF EXISTS totals")
