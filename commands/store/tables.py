"""Tables the write side owns (SQLAlchemy Core).

The Alembic migrations in ``migrations/`` are the source of truth for DDL;
these definitions describe them exactly (columns, types, nullability, keys,
indexes), which ``tests/integration/test_migrations_match_code.py`` checks.
CHECK constraints, server defaults, the ``order_numbers`` sequence and the
ledger's append-only trigger live only in the migrations.
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from commands.events.catalog_changes import CATALOG_CHANGES

metadata = MetaData()

ledger_events = Table(
    "ledger_events",
    metadata,
    Column("position", BigInteger, Identity(always=True), primary_key=True),
    # xid8 in the database; read as text and converted (see ledger.py).
    Column("tx_id", BigInteger, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("stream_type", String(64), nullable=False),
    Column("stream_id", String(200), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("metadata", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("event_id", name="ledger_events_event_id_key"),
    UniqueConstraint("stream_id", "stream_version", name="ledger_events_stream_version_key"),
    Index("ledger_events_tx_order", "tx_id", "position"),
    Index("ledger_events_stream_type", "stream_type", "position"),
    # The last change to what the catalog shows, in one probe (the search model's version).
    Index("ledger_events_catalog_changes", "tx_id", "position", postgresql_where=CATALOG_CHANGES),
)

catalog_products = Table(
    "catalog_products",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("handle", String(120), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("brand", Text),
    Column("categories", ARRAY(Text), nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("handle", name="catalog_products_handle_key"),
)

catalog_variants = Table(
    "catalog_variants",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column(
        "product_id",
        UUID(as_uuid=True),
        ForeignKey("catalog_products.id", name="catalog_variants_product_id_fkey"),
        nullable=False,
    ),
    Column("title", Text, nullable=False),
    Column("price", Numeric(18, 4), nullable=False),
    Column("currency", CHAR(3), nullable=False),
    # 'active' or 'withdrawn': a variant removed from its product stays for history.
    Column("status", String(16), nullable=False),
    Column("sort_order", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Added by 0011_money: 'standard', 'reduced' or 'zero'.
    Column("tax_category", String(16), nullable=False),
    Index("catalog_variants_product", "product_id"),
)

# Who owns each cart and whether it is still active, kept in the cart commands'
# transactions so the write side never asks the lagging read model.
customer_carts = Table(
    "customer_carts",
    metadata,
    Column("cart_id", String(64), primary_key=True),
    Column("customer_id", String(200)),
    # 'ACTIVE', 'MERGED' or 'CHECKED_OUT', as in the cart stream.
    Column("status", String(16), nullable=False),
    Column("merged_into", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index(
    "customer_carts_active",
    customer_carts.c.customer_id,
    customer_carts.c.status,
    customer_carts.c.updated_at.desc(),
)

# Stock per SKU. A SKU without a row is untracked (not stock-managed). The
# migration's CHECK (0 <= reserved <= on_hand) is what makes overselling impossible.
# Bucket 0 is every tracked SKU's row; a SKU flagged hot (inventory_hot_skus) has rows
# 1..n-1 too, each its own CHECK and ledger stream (docs/scaling.md, section 8).
inventory_items = Table(
    "inventory_items",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("bucket", SmallInteger, primary_key=True, server_default="0"),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The version of the row's ledger stream (``inventory-<sku>``, ``inventory-<sku>~<bucket>``):
    # every write that changes the row appends one event there and counts it here, in the same
    # statement.
    Column("stream_version", BigInteger, nullable=False, server_default="0"),
    Index("inventory_items_bucketed", "sku", postgresql_where="bucket > 0"),
)

# SKUs whose stock is spread over ``buckets`` rows, and who decided it ('admin' or 'auto'); one
# bucket set by an admin pins the SKU to its one row (the automatic switch leaves it alone).
inventory_hot_skus = Table(
    "inventory_hot_skus",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("buckets", SmallInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("set_by", String(16), nullable=False, server_default="admin"),
)

# One row per (order, SKU, bucket): 'active' (a lease until expires_at), 'committed',
# 'released', 'expired' or 'consumed'.
inventory_reservations = Table(
    "inventory_reservations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("bucket", SmallInteger, nullable=False, server_default="0"),
    Column("quantity", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["sku", "bucket"],
        ["inventory_items.sku", "inventory_items.bucket"],
        name="inventory_reservations_sku_fkey",
    ),
    UniqueConstraint("order_id", "sku", "bucket", name="inventory_reservations_order_sku"),
    Index("inventory_reservations_expiring", "expires_at", postgresql_where="status = 'active'"),
)

# Checkout and payments (migrations 0006_orders, 0007_checkout).
# One row per (scope, key) while a request with an idempotency key runs and after it completed.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(200), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", CHAR(64), nullable=False),
    # 'in_progress' or 'completed'
    Column("state", String(16), nullable=False),
    Column("recovery_point", String(64), nullable=False),
    Column("progress", JSONB, nullable=False),
    Column("response", JSONB),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("scope", "key"),
    Index("idempotency_keys_expiry", "expires_at"),
)

# Every provider operation, before it is sent: a retry or reconciliation settles it by its key.
payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    # 'authorize', 'capture', 'void' or 'refund'
    Column("operation", String(16), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("request_hash", CHAR(64), nullable=False),
    Column("amount", Numeric(18, 4), nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("provider_reference", String(100)),
    # PENDING (not answered yet), UNKNOWN (no answer in time), or the provider's final status.
    Column("status", String(16), nullable=False),
    Column("response", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Added by 0007_checkout, hence after the timestamps.
    Column("context", JSONB, nullable=False),
    # When the provider first said it never received the operation (reconciliation); cleared
    # by every send. Added by 0018_payment_missing.
    Column("provider_missing_since", DateTime(timezone=True)),
    UniqueConstraint("idempotency_key", name="payment_attempts_idempotency_key_key"),
    Index("payment_attempts_order", "order_id", "created_at"),
    Index("payment_attempts_unknown", "status", postgresql_where="status IN ('UNKNOWN', 'PENDING')"),
)

# Provider webhook events already handled (deduplication and per-payment ordering).
payment_webhook_events = Table(
    "payment_webhook_events",
    metadata,
    Column("provider_event_id", String(100), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("provider_reference", String(100)),
    Column("sequence", Integer),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("payment_webhook_events_payment", "provider_reference", "sequence"),
)

# The order a cart is being bought with while that order is open (one per cart).
checkout_carts = Table(
    "checkout_carts",
    metadata,
    Column("cart_id", String(64), primary_key=True),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Money (migration 0011_money): configuration, kept with its events in the same transactions.
shipping_methods = Table(
    "shipping_methods",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("price", Numeric(18, 4), nullable=False),
    Column("free_above", Numeric(18, 4)),
    # {country code: price}
    Column("country_prices", JSONB, nullable=False),
    Column("countries", ARRAY(Text), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# region '' is the country-wide rate.
tax_rates = Table(
    "tax_rates",
    metadata,
    Column("country_code", CHAR(2), nullable=False),
    Column("region", String(64), nullable=False),
    Column("category", String(16), nullable=False),
    Column("rate", Numeric(9, 6), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("country_code", "region", "category"),
)

tax_policies = Table(
    "tax_policies",
    metadata,
    Column("currency", CHAR(3), primary_key=True),
    Column("prices_include_tax", Boolean, nullable=False),
    Column("rounding", String(16), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# ``uses``: reserved and committed uses; the migration's CHECK (uses <= usage_limit) backs the
# conditional UPDATE that reserves a use.
discount_codes = Table(
    "discount_codes",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("value", Numeric(18, 4), nullable=False),
    Column("target", String(16), nullable=False),
    Column("currency", CHAR(3)),
    Column("minimum_subtotal", Numeric(18, 4)),
    Column("starts_at", DateTime(timezone=True)),
    Column("ends_at", DateTime(timezone=True)),
    Column("usage_limit", Integer),
    Column("per_customer_limit", Integer),
    Column("active", Boolean, nullable=False),
    Column("uses", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per order that used a code: 'reserved', 'committed' or 'released'.
discount_code_uses = Table(
    "discount_code_uses",
    metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column(
        "code",
        String(64),
        ForeignKey("discount_codes.code", name="discount_code_uses_code_fkey"),
        nullable=False,
    ),
    Column("customer_id", String(200)),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("discount_code_uses_customer", "code", "customer_id"),
)
