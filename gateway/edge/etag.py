"""Validators and cache headers of cacheable GraphQL answers (pure functions).

An ETag names one answer: the document, the operation, the variables, whose answer it is
(``public`` or the caller) and the version of every read model the operation reads. It is
weak (``W/``): two answers with one ETag carry the same data, but not byte for byte (the
``freshness`` they report, measured at read time, differs).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from gateway.edge.auth import Principal
from gateway.edge.cache_policy import CachePolicy, Scope
from queries.freshness import TxPosition

# (tx_id, position) of the last event that changed a read model.

# What a cacheable answer varies on besides its URL: the response media type and the credentials.
VARY = "Accept, Authorization, X-API-Key"


def caller_key(scope: Scope, principal: Principal) -> str:
    """``public`` for answers anyone may share; else who the answer belongs to."""
    if scope is Scope.PUBLIC:
        return "public"
    roles = ",".join(sorted(principal.roles))
    return f"subject={principal.subject or ''};roles={roles};client={principal.client or ''}"


def derive_etag(
    *,
    salt: str,
    document_sha256: str,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    caller: str,
    versions: Mapping[str, TxPosition],
) -> str:
    digest = hashlib.blake2b(digest_size=18)
    for part in (
        salt,
        document_sha256,
        operation_name or "",
        json.dumps(variables or {}, sort_keys=True, separators=(",", ":"), default=str),
        caller,
        ";".join(f"{name}={tx}.{position}" for name, (tx, position) in sorted(versions.items())),
    ):
        digest.update(part.encode())
        digest.update(b"\x00")
    return f'W/"{digest.hexdigest()}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2): any listed tag with the same opaque value, or ``*``."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def cache_control(policy: CachePolicy | None) -> str:
    if policy is None or policy.scope is Scope.NO_STORE:
        return "no-store"
    if policy.scope is Scope.PRIVATE:
        return f"private, max-age={policy.max_age}"
    return f"public, max-age={policy.max_age}, stale-while-revalidate={policy.stale_while_revalidate}"
