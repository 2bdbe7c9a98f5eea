"""Catalog tables the commands own: the source of truth checkout reprices from.

Revision ID: 0002_catalog
Revises: 0001_ledger
"""

from alembic import op

revision = "0002_catalog"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE catalog_products (
            id uuid PRIMARY KEY,
            handle varchar(120) NOT NULL UNIQUE,
            title text NOT NULL,
            description text NOT NULL DEFAULT '',
            brand text,
            categories text[] NOT NULL DEFAULT '{}',
            currency char(3) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE catalog_variants (
            sku varchar(64) PRIMARY KEY,
            product_id uuid NOT NULL REFERENCES catalog_products (id),
            title text NOT NULL,
            price numeric(18, 4) NOT NULL CHECK (price >= 0),
            currency char(3) NOT NULL,
            status varchar(16) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'withdrawn')),
            sort_order integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX catalog_variants_product ON catalog_variants (product_id)")


def downgrade() -> None:
    op.execute("DROP TABLE catalog_variants")
    op.execute("DROP TABLE catalog_products")
