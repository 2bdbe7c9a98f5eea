"""Tables the write side owns, plus the projection checkpoints (SQLAlchemy Core).

The Alembic migrations in ``migrations/`` are the source of truth for DDL;
these definitions are what the code queries with and must match them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()

ledger_events = Table(
    "ledger_events",
    metadata,
    Column("position", BigInteger, primary_key=True),
    # xid8 in the database; read as text and converted (see ledger.py).
    Column("tx_id", BigInteger, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("stream_type", String(64), nullable=False),
    Column("stream_id", String(200), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("metadata", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("stream_id", "stream_version", name="ledger_events_stream_version_key"),
)

projection_checkpoints = Table(
    "projection_checkpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("tx_id", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("state", String(32), nullable=False),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_applied_at", DateTime(timezone=True)),
)

catalog_products = Table(
    "catalog_products",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("handle", String(120), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("brand", Text),
    Column("categories", ARRAY(Text), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

catalog_variants = Table(
    "catalog_variants",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("title", Text, nullable=False),
    Column("price", Numeric(18, 4), nullable=False),
    Column("currency", String(3), nullable=False),
    # 'active' or 'withdrawn': a variant removed from its product stays for history.
    Column("status", String(16), nullable=False),
    Column("sort_order", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
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

# API clients (partner apps): only a hash of each key is stored.
api_clients = Table(
    "api_clients",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(16), nullable=False),
    Column("roles", ARRAY(Text), nullable=False),
    Column("persisted_only", Boolean, nullable=False),
    Column("budget", Integer),
    Column("restore_rate", Double),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# Trusted documents registered per client from a persisted-query manifest.
persisted_documents = Table(
    "persisted_documents",
    metadata,
    Column("client_id", UUID(as_uuid=True), primary_key=True),
    Column("document_id", String(200), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("operation_name", String(200)),
    Column("operation_type", String(16)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Stock per SKU. A SKU without a row is untracked (not stock-managed). The
# migration's CHECK (0 <= reserved <= on_hand) is what makes overselling impossible.
inventory_items = Table(
    "inventory_items",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per (order, SKU): 'active' (a lease until expires_at), 'committed',
# 'released', 'expired' or 'consumed'.
inventory_reservations = Table(
    "inventory_reservations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("order_id", "sku", name="inventory_reservations_order_sku"),
)

# The ``orders`` read model (written by projections/orders.py, read by queries/orders.py).
# JSON columns: lines [{sku, title, quantity, unit_price, line_total}], shipping_address,
# history [{type, at, position}] oldest first.
order_view = Table(
    "order_view",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("number", Text, nullable=False),
    Column("customer_id", Text),
    Column("email", Text, nullable=False),
    Column("cart_id", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("payment_status", String(16), nullable=False),
    Column("payment_amount", Numeric, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("provider_reference", Text),
    Column("lines", JSONB, nullable=False),
    Column("subtotal", Numeric, nullable=False),
    Column("total", Numeric, nullable=False),
    Column("shipping_address", JSONB, nullable=False),
    Column("history", JSONB, nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Checkout and payments (migrations 0006_orders, 0007_checkout).
# Every provider operation, before it is sent: a retry or reconciliation settles it by its key.
payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    # 'authorize', 'capture', 'void' or 'refund'
    Column("operation", String(16), nullable=False),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("amount", Numeric(18, 4), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("provider_reference", String(100)),
    # PENDING (not answered yet), UNKNOWN (no answer in time), or the provider's final status.
    Column("status", String(16), nullable=False),
    Column("response", JSONB),
    Column("context", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
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
)

# The order a cart is being bought with while that order is open (one per cart).
checkout_carts = Table(
    "checkout_carts",
    metadata,
    Column("cart_id", String(64), primary_key=True),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
