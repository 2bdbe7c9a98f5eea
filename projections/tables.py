"""Tables the PostgreSQL projections own: their checkpoints and read models (SQLAlchemy Core).

Created by the migrations (``0001_ledger``, ``0005_inventory``, ``0008_order_view``,
``0009_timeline``); these definitions describe them exactly (checked by
``tests/integration/test_migrations_match_code.py``). Rebuild copies are shaped
after the live tables (see each projector's ``setup``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# Where each projector is in the gap-safe ledger order (see projections/checkpoints.py).
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

# The ``orders`` read model (written by projections/orders.py, read by queries/orders.py).
# JSON columns: lines [{sku, title, quantity, unit_price, line_total}], shipping_address,
# history [{type, at, position}] oldest first.
order_view = Table(
    "order_view",
    metadata,
    # Unnamed so a copy under another name gets its own "<table>_pkey" (order_view_pkey here).
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
    # 0012_order_totals: shipping, discounts and tax lines (amounts as strings); null when none.
    Column("totals", JSONB),
)
Index(
    "order_view_customer_created",
    order_view.c.customer_id,
    order_view.c.created_at.desc(),
    order_view.c.order_id,
)
Index("order_view_status", order_view.c.status, order_view.c.created_at.desc(), order_view.c.order_id)

# Money configuration and variant tax categories (0013_pricing_view), one row per
# (kind, key): 'shipping_method' by code, 'tax_rate' by country/region/category,
# 'tax_policy' by currency, 'discount_code' by code, 'variant_tax' by SKU.
pricing_view = Table(
    "pricing_view",
    metadata,
    Column("kind", String(32), nullable=False),
    Column("key", String(200), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("kind", "key", name="pricing_view_pkey"),
)

# The ``inventory`` read model (projections/inventory.py), one row per stock bucket (sku, bucket):
# the row of stream ``inventory-<sku>`` (bucket 0) or ``inventory-<sku>~<bucket>``; a SKU's level
# is the sum of its rows (queries/inventory.py). Buckets since 0016_inventory_view_buckets.
inventory_view = Table(
    "inventory_view",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("bucket", SmallInteger, primary_key=True, server_default="0"),
    Column("product_id", String(64)),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("available", Integer, nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("inventory_view_product", "product_id"),
)

# The support timeline (projections/timeline/): one entry per customer-relevant event,
# keyed by ledger position, and the customer each cart or order belongs to.
timeline_entries = Table(
    "timeline_entries",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("customer_id", String(200)),
    Column("cart_id", String(200)),
    Column("order_id", String(200)),
    Column("kind", String(16), nullable=False),
    Column("type", String(100), nullable=False),
    Column("summary", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("timeline_entries_customer", timeline_entries.c.customer_id, timeline_entries.c.position.desc())
Index(
    "timeline_entries_cart",
    timeline_entries.c.cart_id,
    postgresql_where=timeline_entries.c.customer_id.is_(None),
)
Index(
    "timeline_entries_order",
    timeline_entries.c.order_id,
    postgresql_where=timeline_entries.c.customer_id.is_(None),
)

timeline_owners = Table(
    "timeline_owners",
    metadata,
    Column("kind", String(8), nullable=False),
    Column("key", String(200), nullable=False),
    Column("customer_id", String(200), nullable=False),
    PrimaryKeyConstraint("kind", "key"),
)
