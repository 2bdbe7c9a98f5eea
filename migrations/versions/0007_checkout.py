"""Checkout: one open order per cart, and what a payment attempt needs to be settled later.

Revision ID: 0007_checkout
Revises: 0006_orders
"""

from alembic import op

revision = "0007_checkout"
down_revision = "0006_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A cart stays ACTIVE while its order awaits payment (a declined buyer may retry with
    # another card), so this row is what stops a second order for the same cart meanwhile.
    op.execute(
        """
        CREATE TABLE checkout_carts (
            cart_id varchar(64) PRIMARY KEY,
            order_id uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # Why the operation was asked for (e.g. the refund reason), so a settlement found later
    # by webhook or reconciliation records the same facts the request would have.
    op.execute("ALTER TABLE payment_attempts ADD COLUMN context jsonb NOT NULL DEFAULT '{}'::jsonb")
    op.execute(
        "CREATE INDEX payment_webhook_events_payment ON payment_webhook_events (provider_reference, sequence)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX payment_webhook_events_payment")
    op.execute("ALTER TABLE payment_attempts DROP COLUMN context")
    op.execute("DROP TABLE checkout_carts")
