"""API clients flagged as storefront servers (SSR, BFF): budgets key on the buyer they name.

Revision ID: 0010_storefront_clients
Revises: 0009_timeline
"""

from alembic import op

revision = "0010_storefront_clients"
down_revision = "0009_timeline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE api_clients ADD COLUMN storefront boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE api_clients DROP COLUMN storefront")
