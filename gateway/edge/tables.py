"""Tables the edge owns: API clients and their trusted documents (SQLAlchemy Core).

Created by migration ``0004_edge``; these definitions describe it exactly
(checked by ``tests/integration/test_migrations_match_code.py``). The CHECKs on
``budget`` and ``restore_rate`` and the server defaults live only in the migration.
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID

metadata = MetaData()

# API clients (partner apps): only a hash of each key is stored.
api_clients = Table(
    "api_clients",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("key_hash", CHAR(64), nullable=False),
    Column("key_prefix", String(16), nullable=False),
    Column("roles", ARRAY(Text), nullable=False),
    Column("persisted_only", Boolean, nullable=False),
    # A storefront server (SSR, BFF) may name the buyer it calls for (X-Buyer-IP); 0010.
    Column("storefront", Boolean, nullable=False),
    Column("budget", Integer),
    Column("restore_rate", Double),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    UniqueConstraint("key_hash", name="api_clients_key_hash_key"),
    # A revoked client's name may be given to a new client (its documents stay with the old one).
    Index("api_clients_active_name", "name", unique=True, postgresql_where="revoked_at IS NULL"),
)

# Trusted documents registered per client from a persisted-query manifest.
persisted_documents = Table(
    "persisted_documents",
    metadata,
    Column(
        "client_id",
        UUID(as_uuid=True),
        ForeignKey("api_clients.id", name="persisted_documents_client_id_fkey"),
        primary_key=True,
    ),
    Column("document_id", String(200), primary_key=True),
    Column("sha256", CHAR(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("operation_name", String(200)),
    Column("operation_type", String(16)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("persisted_documents_sha256", "client_id", "sha256"),
)
