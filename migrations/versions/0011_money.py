"""Money: shipping methods, tax rates and policies, discount codes and their uses, variant tax categories.

Revision ID: 0011_money
Revises: 0010_storefront_clients
"""

from alembic import op

revision = "0011_money"
down_revision = "0010_storefront_clients"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE catalog_variants ADD COLUMN tax_category varchar(16) NOT NULL DEFAULT 'standard' "
        "CHECK (tax_category IN ('standard', 'reduced', 'zero'))"
    )
    op.execute(
        """
        CREATE TABLE shipping_methods (
            code varchar(64) PRIMARY KEY,
            name text NOT NULL,
            currency char(3) NOT NULL,
            price numeric(18, 4) NOT NULL CHECK (price >= 0),
            free_above numeric(18, 4),
            country_prices jsonb NOT NULL DEFAULT '{}'::jsonb,
            countries text[] NOT NULL DEFAULT '{}',
            active boolean NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # region '' is the country-wide rate (a primary key cannot hold NULL).
    op.execute(
        """
        CREATE TABLE tax_rates (
            country_code char(2) NOT NULL,
            region varchar(64) NOT NULL,
            category varchar(16) NOT NULL,
            rate numeric(9, 6) NOT NULL CHECK (rate >= 0 AND rate < 1),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (country_code, region, category)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE tax_policies (
            currency char(3) PRIMARY KEY,
            prices_include_tax boolean NOT NULL,
            rounding varchar(16) NOT NULL CHECK (rounding IN ('PER_LINE', 'PER_TOTAL')),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # ``uses`` counts reserved and committed uses; the CHECK backs the conditional UPDATE
    # that reserves one (a code limited to N uses is never used N + 1 times).
    op.execute(
        """
        CREATE TABLE discount_codes (
            code varchar(64) PRIMARY KEY,
            kind varchar(16) NOT NULL,
            value numeric(18, 4) NOT NULL CHECK (value > 0),
            target varchar(16) NOT NULL,
            currency char(3),
            minimum_subtotal numeric(18, 4),
            starts_at timestamptz,
            ends_at timestamptz,
            usage_limit integer,
            per_customer_limit integer,
            active boolean NOT NULL,
            uses integer NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CHECK (uses >= 0 AND (usage_limit IS NULL OR uses <= usage_limit))
        )
        """
    )
    # One row per order that used a code: 'reserved', 'committed' or 'released'.
    op.execute(
        """
        CREATE TABLE discount_code_uses (
            order_id uuid PRIMARY KEY,
            code varchar(64) NOT NULL REFERENCES discount_codes (code),
            customer_id varchar(200),
            status varchar(16) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX discount_code_uses_customer ON discount_code_uses (code, customer_id)")


def downgrade() -> None:
    op.execute("DROP TABLE discount_code_uses")
    op.execute("DROP TABLE discount_codes")
    op.execute("DROP TABLE tax_policies")
    op.execute("DROP TABLE tax_rates")
    op.execute("DROP TABLE shipping_methods")
    op.execute("ALTER TABLE catalog_variants DROP COLUMN tax_category")
