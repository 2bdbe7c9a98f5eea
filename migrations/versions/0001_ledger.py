"""Ledger and projection checkpoints.

Revision ID: 0001_ledger
Revises:
"""

from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ledger_events (
            position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
            event_id uuid NOT NULL UNIQUE,
            stream_type varchar(64) NOT NULL,
            stream_id varchar(200) NOT NULL,
            stream_version integer NOT NULL CHECK (stream_version > 0),
            type varchar(100) NOT NULL,
            data jsonb NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            CONSTRAINT ledger_events_stream_version_key UNIQUE (stream_id, stream_version)
        )
        """
    )
    # Gap-safe readers scan in (tx_id, position) order.
    op.execute("CREATE INDEX ledger_events_tx_order ON ledger_events (tx_id, position)")
    op.execute("CREATE INDEX ledger_events_stream_type ON ledger_events (stream_type, position)")
    # The ledger is append-only: refuse UPDATE and DELETE outright.
    op.execute(
        """
        CREATE FUNCTION ledger_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger_events is append-only';
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER ledger_events_no_update BEFORE UPDATE OR DELETE ON ledger_events
        FOR EACH ROW EXECUTE FUNCTION ledger_events_append_only()
        """
    )
    op.execute(
        """
        CREATE TABLE projection_checkpoints (
            name varchar(64) PRIMARY KEY,
            tx_id bigint NOT NULL DEFAULT 0,
            position bigint NOT NULL DEFAULT 0,
            state varchar(32) NOT NULL DEFAULT 'RUNNING',
            last_error text,
            failures integer NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now(),
            last_applied_at timestamptz
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE projection_checkpoints")
    op.execute("DROP TRIGGER ledger_events_no_update ON ledger_events")
    op.execute("DROP FUNCTION ledger_events_append_only()")
    op.execute("DROP TABLE ledger_events")
