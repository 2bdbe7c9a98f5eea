"""When the provider first said it never received a payment attempt's operation.

``payment_attempts.provider_missing_since``: set by reconciliation at the first look that finds
nothing at the provider, cleared whenever the operation is sent again. An authorization is given
up only once the provider has said so for ``PAYMENT_ABANDON_SECONDS`` (two looks at least that
far apart), where it used to be given up at the first such look after that long without a touch.
See ``commands/checkout/reconcile.py``.

Revision ID: 0018_payment_missing
Revises: 0017_hot_sku_switch
"""

from alembic import op

revision = "0018_payment_missing"
down_revision = "0017_hot_sku_switch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payment_attempts ADD COLUMN provider_missing_since timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE payment_attempts DROP COLUMN provider_missing_since")
