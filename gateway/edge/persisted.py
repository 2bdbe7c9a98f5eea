"""Persisted documents: Apollo APQ (Redis) and trusted documents per client (PostgreSQL).

Resolution turns a request's ``query`` / ``documentId`` /
``extensions.persistedQuery`` into the document text to run, enforcing the
persisted-only policy of API clients.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis_async
from redis.exceptions import RedisError
from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.edge.clients import ApiClient
from gateway.edge.errors import GatewayError, bad_user_input
from gateway.edge.tables import persisted_documents
from gateway.edge.ttl_cache import TtlCache

log = logging.getLogger(__name__)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _named_digest(document_id: str) -> str | None:
    """The SHA-256 a document id names (itself, or after ``sha256:``; either case), lowercased;
    None when it names none."""
    digest = document_id.removeprefix("sha256:").lower()
    return digest if _SHA256.match(digest) else None


_CACHE_ENTRIES = 10_000
# Unknown ids are cached briefly so newly registered documents show up quickly.
_NEGATIVE_SECONDS = 5.0
_POSITIVE_SECONDS = 3600.0
# Budget points an APQ registration costs on top of its operation (it holds Redis memory for a day).
APQ_REGISTRATION_COST = 10


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def not_found() -> GatewayError:
    return GatewayError("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")


def persisted_required() -> GatewayError:
    return GatewayError(
        "PERSISTED_QUERY_REQUIRED", "This client may only run its registered (trusted) documents"
    )


# ---------------------------------------------------------------- manifests


@dataclass(frozen=True)
class ManifestEntry:
    id: str
    body: str
    name: str | None = None
    type: str | None = None


def parse_manifest(raw: object) -> list[ManifestEntry]:
    """Apollo's ``apollo-persisted-query-manifest`` or Relay's ``{"<id>": "<document>"}``."""
    if isinstance(raw, dict) and raw.get("format") == "apollo-persisted-query-manifest":
        operations = raw.get("operations")
        if not isinstance(operations, list):
            raise ValueError("manifest: 'operations' must be a list")
        entries = []
        for i, op in enumerate(operations):
            if not (
                isinstance(op, dict) and isinstance(op.get("id"), str) and isinstance(op.get("body"), str)
            ):
                raise ValueError(f"manifest: operation {i} needs string 'id' and 'body'")
            # Apollo's ids are the SHA-256 of the body; a mismatch means a corrupted manifest.
            if op["id"] != sha256_hex(op["body"]):
                raise ValueError(f"manifest: operation {op['id']!r} is not the SHA-256 of its body")
            name, kind = op.get("name"), op.get("type")
            entries.append(
                ManifestEntry(
                    op["id"],
                    op["body"],
                    name if isinstance(name, str) else None,
                    kind if isinstance(kind, str) else None,
                )
            )
    elif isinstance(raw, dict) and raw and all(isinstance(v, str) for v in raw.values()):
        entries = [ManifestEntry(str(key), body) for key, body in raw.items()]
    else:
        raise ValueError("manifest: expected Apollo's persisted query manifest or Relay's {id: document}")
    for entry in entries:
        if not 0 < len(entry.id) <= 200:
            raise ValueError(f"manifest: document ids are 1-200 characters ({entry.id[:40]!r}...)")
        # Any id may name a document (Relay's are often MD5s); one that says it is a SHA-256
        # (``sha256:<hash>``, as trusted documents are written) must be its body's.
        if entry.id.startswith("sha256:") and _named_digest(entry.id) != sha256_hex(entry.body):
            raise ValueError(f"manifest: document {entry.id!r} is not the SHA-256 of its body")
    return entries


# ---------------------------------------------------------------- stores


class TrustedDocuments:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._cache: TtlCache[tuple[uuid.UUID, str], str] = TtlCache(_CACHE_ENTRIES, _POSITIVE_SECONDS)
        self._misses: TtlCache[tuple[uuid.UUID, str], bool] = TtlCache(_CACHE_ENTRIES, _NEGATIVE_SECONDS)

    async def register(self, client: ApiClient, entries: list[ManifestEntry]) -> tuple[int, int]:
        """Store the entries for the client; returns (added, already present).

        An id that is already registered with a different body is refused, so a
        trusted document never changes meaning under a client that uses it.
        """
        async with self._engine.begin() as conn:
            existing = {
                row.document_id: row.body
                for row in await conn.execute(
                    select(persisted_documents.c.document_id, persisted_documents.c.body).where(
                        persisted_documents.c.client_id == client.id,
                        persisted_documents.c.document_id.in_([e.id for e in entries]),
                    )
                )
            }
            conflicts = [e.id for e in entries if e.id in existing and existing[e.id] != e.body]
            if conflicts:
                raise ValueError(f"already registered with a different body: {', '.join(conflicts[:5])}")
            new = [e for e in entries if e.id not in existing]
            if new:
                await conn.execute(
                    insert(persisted_documents)
                    .values(
                        [
                            {
                                "client_id": client.id,
                                "document_id": e.id,
                                "sha256": sha256_hex(e.body),
                                "body": e.body,
                                "operation_name": e.name,
                                "operation_type": e.type,
                                "created_at": func.now(),
                            }
                            for e in new
                        ]
                    )
                    .on_conflict_do_nothing()
                )
        return len(new), len(entries) - len(new)

    async def lookup(self, client: ApiClient, key: str) -> str | None:
        """The body registered for the client under ``key``: a document id or a SHA-256."""
        cache_key = (client.id, key)
        found, body = self._cache.get(cache_key)
        if found:
            return body
        if self._misses.get(cache_key)[0]:
            return None
        candidates = {key, key.removeprefix("sha256:")}
        digest = _named_digest(key)
        condition = or_(
            persisted_documents.c.document_id.in_(candidates),
            persisted_documents.c.sha256.in_([] if digest is None else [digest]),
        )
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(persisted_documents.c.body)
                    .where(persisted_documents.c.client_id == client.id, condition)
                    .limit(1)
                )
            ).first()
        if row is None:
            self._misses.put(cache_key, True)
            return None
        self._cache.put(cache_key, row.body)
        return str(row.body)


class ApqCache:
    """Automatic persisted queries: SHA-256 -> document text, shared by every gateway instance.

    Documents found are also kept in this process (they are named by their hash, so a kept one
    can never be wrong): a repeated GET, a revalidation above all, costs no Redis round trip.
    """

    def __init__(self, redis: redis_async.Redis, prefix: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._prefix = f"{prefix}apq:"
        self._ttl = ttl_seconds
        self._known: TtlCache[str, str] = TtlCache(_CACHE_ENTRIES, min(ttl_seconds, _POSITIVE_SECONDS))

    # Without Redis, APQ degrades to "not found": clients fall back to sending the query.

    async def get(self, digest: str) -> str | None:
        found, known = self._known.get(digest)
        if found:
            return known
        try:
            value = await self._redis.get(self._prefix + digest)
        except RedisError as exc:
            log.warning("APQ cache unavailable: %s", exc)
            return None
        document = value.decode() if isinstance(value, bytes) else value
        if document is not None:
            self._known.put(digest, document)
        return document

    async def put(self, digest: str, document: str) -> None:
        try:
            await self._redis.set(self._prefix + digest, document, ex=self._ttl)
        except RedisError as exc:
            log.warning("APQ cache unavailable: %s", exc)


# ---------------------------------------------------------------- resolution


@dataclass(frozen=True)
class ResolvedDocument:
    text: str
    sha256: str
    # Set when the request registered the document through APQ (stored once it validates).
    register_apq: bool = False


def _persisted_hash(extensions: Mapping[str, Any] | None) -> str | None:
    if not extensions or "persistedQuery" not in extensions:
        return None
    pq = extensions["persistedQuery"]
    if not isinstance(pq, dict) or pq.get("version") != 1:
        raise bad_user_input("Unsupported persisted query version", reason="PERSISTED_QUERY_VERSION")
    digest = pq.get("sha256Hash")
    named = _named_digest(digest) if isinstance(digest, str) and not digest.startswith("sha256:") else None
    if named is None:
        raise bad_user_input("persistedQuery.sha256Hash must be a SHA-256 hex digest")
    return named


class DocumentResolver:
    def __init__(self, trusted: TrustedDocuments, apq: ApqCache) -> None:
        self._trusted = trusted
        self._apq = apq

    async def resolve(
        self,
        *,
        query: str | None,
        document_id: str | None,
        extensions: Mapping[str, Any] | None,
        client: ApiClient | None,
    ) -> ResolvedDocument:
        digest = _persisted_hash(extensions)
        if query is None and document_id is None and digest is None:
            raise GatewayError("BAD_REQUEST", "No GraphQL query found in the request")
        reference = document_id or digest
        if reference is None and query is not None and client is not None and client.persisted_only:
            reference = sha256_hex(query)
        if reference is not None and client is not None:
            body = await self._trusted.lookup(client, reference)
            if body is not None:
                return ResolvedDocument(body, sha256_hex(body))
        if client is not None and client.persisted_only:
            # APQ registration and free-form text are both "something else" for this client.
            if query is None:
                raise not_found()
            raise persisted_required()
        if document_id is not None:
            candidate = _named_digest(document_id)
            if candidate is None or (body := await self._apq.get(candidate)) is None:
                raise not_found()
            return ResolvedDocument(body, candidate)
        if digest is not None:
            if query is not None:
                if sha256_hex(query) != digest:
                    raise bad_user_input(
                        "provided sha does not match query", reason="PERSISTED_QUERY_HASH_MISMATCH"
                    )
                return ResolvedDocument(query, digest, register_apq=True)
            body = await self._apq.get(digest)
            if body is None:
                raise not_found()
            return ResolvedDocument(body, digest)
        assert query is not None
        return ResolvedDocument(query, sha256_hex(query))

    async def register_apq(self, document: ResolvedDocument) -> None:
        await self._apq.put(document.sha256, document.text)
