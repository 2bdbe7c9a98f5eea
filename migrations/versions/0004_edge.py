"""API clients (partner apps) and their trusted (persisted) documents.

Revision ID: 0004_edge
Revises: 0003_carts
"""

from alembic import op

revision = "0004_edge"
down_revision = "0003_carts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_clients (
            id uuid PRIMARY KEY,
            name varchar(100) NOT NULL,
            key_hash char(64) NOT NULL UNIQUE,
            key_prefix varchar(16) NOT NULL,
            roles text[] NOT NULL DEFAULT '{}',
            persisted_only boolean NOT NULL DEFAULT false,
            budget integer CHECK (budget > 0),
            restore_rate double precision CHECK (restore_rate > 0),
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        )
        """
    )
    # A revoked client's name may be given to a new client (its documents stay with the old one).
    op.execute("CREATE UNIQUE INDEX api_clients_active_name ON api_clients (name) WHERE revoked_at IS NULL")
    op.execute(
        """
        CREATE TABLE persisted_documents (
            client_id uuid NOT NULL REFERENCES api_clients (id),
            document_id varchar(200) NOT NULL,
            sha256 char(64) NOT NULL,
            body text NOT NULL,
            operation_name varchar(200),
            operation_type varchar(16),
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (client_id, document_id)
        )
        """
    )
    op.execute("CREATE INDEX persisted_documents_sha256 ON persisted_documents (client_id, sha256)")


def downgrade() -> None:
    op.execute("DROP TABLE persisted_documents")
    op.execute("DROP TABLE api_clients")
