"""Idempotency keys, payment attempts, provider webhooks, order numbers.

Revision ID: 0006_orders
Revises: 0005_inventory
"""

from alembic import op

revision = "0006_orders"
down_revision = "0005_inventory"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE idempotency_keys (
            scope varchar(200) NOT NULL,
            key varchar(255) NOT NULL,
            request_hash char(64) NOT NULL,
            state varchar(16) NOT NULL CHECK (state IN ('in_progress', 'completed')),
            recovery_point varchar(64) NOT NULL DEFAULT 'started',
            progress jsonb NOT NULL DEFAULT '{}'::jsonb,
            response jsonb,
            locked_until timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            PRIMARY KEY (scope, key)
        )
        """
    )
    op.execute("CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)")
    op.execute(
        """
        CREATE TABLE payment_attempts (
            id uuid PRIMARY KEY,
            order_id uuid NOT NULL,
            operation varchar(16) NOT NULL CHECK (operation IN ('authorize', 'capture', 'void', 'refund')),
            idempotency_key varchar(255) NOT NULL UNIQUE,
            request_hash char(64) NOT NULL,
            amount numeric(18, 4) NOT NULL,
            currency char(3) NOT NULL,
            provider_reference varchar(100),
            status varchar(16) NOT NULL,
            response jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX payment_attempts_order ON payment_attempts (order_id, created_at)")
    op.execute(
        "CREATE INDEX payment_attempts_unknown ON payment_attempts (status) "
        "WHERE status IN ('UNKNOWN', 'PENDING')"
    )
    op.execute(
        """
        CREATE TABLE payment_webhook_events (
            provider_event_id varchar(100) PRIMARY KEY,
            type varchar(64) NOT NULL,
            provider_reference varchar(100),
            sequence integer,
            received_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE SEQUENCE order_numbers START 100001")


def downgrade() -> None:
    op.execute("DROP SEQUENCE order_numbers")
    op.execute("DROP TABLE payment_webhook_events")
    op.execute("DROP TABLE payment_attempts")
    op.execute("DROP TABLE idempotency_keys")
