"""Idempotency keys: the same key + the same request returns the first outcome.

A key is scoped to the caller and the operation. ``claim`` runs in its own
short transaction, so a concurrent duplicate sees the claim at once:

- new key: claimed, with a lease while this request works on it;
- same request, completed: the stored response is replayed;
- same request, still leased by another request: IDEMPOTENCY_KEY_IN_PROGRESS;
- same request, lease run out (the worker crashed): resumed from its recovery point;
- different request under the same key: IDEMPOTENCY_KEY_REUSED.

Multi-phase commands (checkout) record a recovery point and progress data
inside each phase's transaction, so a retry resumes instead of repeating.
Validation failures are not stored: ``abandon`` removes an unstarted claim.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.errors import DomainError, InvalidInput
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import UnitOfWork

KEY_TTL = timedelta(hours=24)
DEFAULT_LEASE = timedelta(seconds=30)
STARTED = "started"
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyKeyInProgress(DomainError):
    code = "IDEMPOTENCY_KEY_IN_PROGRESS"


def validate_key(key: str, field_path: Sequence[str]) -> None:
    """1 to 255 printable ASCII characters, not all spaces."""
    # ASCII and printable: exactly " " to "~". Blank is refused: it is a client's missing key
    # (an empty template value), which two unrelated requests would share.
    if not key.strip(" ") or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise InvalidInput(
            f"idempotency key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, not only spaces",
            field_path,
        )


def request_hash(payload: Mapping[str, Any]) -> str:
    """Hash of the business input, stable across key order and number formatting."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    scope: str
    key: str
    request_hash: str
    recovery_point: str = STARTED
    progress: dict[str, Any] = field(default_factory=dict)
    replay: dict[str, Any] | None = None


class KeyTaken(Exception):
    """A key claimed at the end of a first phase was claimed by another request meanwhile:
    the phase rolls back and the request takes the ordinary path (wait, then replay)."""


async def try_claim(conn: AsyncConnection, claim: tuple[str, tuple[Any, ...]]) -> bool:
    """Claim a new key in the caller's transaction with ``claiming``'s statement; False when the
    key exists (or is being claimed: the insert then waits for that transaction to end)."""
    statement, arguments = claim
    return await (await asyncpg_of(conn)).fetchval(statement, *arguments) is not None


def claiming(
    scope: str,
    key: str,
    hashed_request: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    recovery_point: str = STARTED,
    progress: Mapping[str, Any] | None = None,
    first_parameter: int = 1,
) -> tuple[str, tuple[Any, ...]]:
    """The statement claiming a new key, already at ``recovery_point`` (returning the key when it
    claimed it, no row when the key exists), and its arguments, its parameters numbered from
    ``first_parameter``: for ``try_claim``, or for a caller that sends it as a CTE of its own."""
    arguments = (
        scope,
        key,
        hashed_request,
        recovery_point,
        json.dumps(dict(progress or {}), default=str),
        lease,
        KEY_TTL,
    )
    return _claiming_sql(first_parameter), arguments


@functools.cache
def _claiming_sql(first_parameter: int) -> str:
    """The text of ``claiming``'s statement (one per parameter offset: built once)."""
    p = [f"${first_parameter + i}" for i in range(7)]
    return (
        "INSERT INTO idempotency_keys "
        "(scope, key, request_hash, state, recovery_point, progress, locked_until, expires_at) "
        f"VALUES ({p[0]}, {p[1]}, {p[2]}, 'in_progress', {p[3]}, {p[4]}::text::jsonb, "
        f"now() + {p[5]}::interval, now() + {p[6]}::interval) "
        "ON CONFLICT (scope, key) DO NOTHING RETURNING key"
    )


async def exists(source: AsyncEngine | AsyncConnection, scope: str, key: str) -> bool:
    """Whether the key was claimed already (a repeat: replay or resume)."""
    if isinstance(source, AsyncEngine):
        async with source.connect() as conn:
            return await exists(conn, scope, key)
    driver = await asyncpg_of(source)
    found = await driver.fetchval("SELECT 1 FROM idempotency_keys WHERE scope = $1 AND key = $2", scope, key)
    return found is not None


async def claim(
    engine: AsyncEngine,
    scope: str,
    key: str,
    hashed_request: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    field_path: Sequence[str] = ("idempotencyKey",),
) -> Claim:
    async with engine.begin() as conn:
        if await try_claim(conn, claiming(scope, key, hashed_request, lease=lease)):
            return Claim(scope, key, hashed_request)
        row = (
            await conn.execute(
                text(
                    "SELECT request_hash, state, recovery_point, progress, response, "
                    "locked_until > now() AS leased, expires_at <= now() AS expired "
                    "FROM idempotency_keys WHERE scope = :scope AND key = :key FOR UPDATE"
                ),
                {"scope": scope, "key": key},
            )
        ).one()
        if row.expired:
            await conn.execute(
                text(
                    "UPDATE idempotency_keys SET request_hash = :hash, state = 'in_progress', "
                    "recovery_point = :started, progress = '{}'::jsonb, response = NULL, "
                    "locked_until = now() + :lease, created_at = now(), updated_at = now(), "
                    "expires_at = now() + :ttl WHERE scope = :scope AND key = :key"
                ),
                {
                    "scope": scope,
                    "key": key,
                    "hash": hashed_request,
                    "lease": lease,
                    "ttl": KEY_TTL,
                    "started": STARTED,
                },
            )
            return Claim(scope, key, hashed_request)
        if row.request_hash != hashed_request:
            raise IdempotencyKeyReused(
                "this idempotency key was already used with a different request", field_path
            )
        if row.state == "completed":
            return Claim(
                scope, key, hashed_request, row.recovery_point, dict(row.progress), dict(row.response)
            )
        if row.leased:
            raise IdempotencyKeyInProgress(
                "a request with this idempotency key is still being processed; retry shortly", field_path
            )
        await conn.execute(
            text(
                "UPDATE idempotency_keys SET locked_until = now() + :lease, updated_at = now() "
                "WHERE scope = :scope AND key = :key"
            ),
            {"scope": scope, "key": key, "lease": lease},
        )
        return Claim(scope, key, hashed_request, row.recovery_point, dict(row.progress))


@dataclass
class ClaimedKey:
    """The claim a request works under: phases advance its recovery point, and whoever stores the
    outcome (in the command's last transaction) marks it completed so the runner does not again.

    ``pending``: not written yet; the first phase writes it at its end (see ``commands.idempotent``).
    """

    claim: Claim
    completed: bool = False
    pending: bool = False
    lease: timedelta = DEFAULT_LEASE


class Outcome(Protocol):
    def to_json(self) -> dict[str, Any]: ...


async def store_outcome(conn: AsyncConnection, key: ClaimedKey, outcome: Outcome) -> None:
    """Store the outcome every retry with this key will get, in the caller's transaction."""
    await complete(conn, key.claim, outcome.to_json())
    key.completed = True


def store_outcome_at_commit(uow: UnitOfWork, key: ClaimedKey, outcome: Outcome) -> None:
    """``store_outcome``, written with the unit of work's COMMIT (``UnitOfWork.write_at_commit``):
    for a last phase that reads the key's row no more."""
    uow.write_at_commit(*completion(key.claim, outcome.to_json()))
    key.completed = True


async def record_progress(
    conn: AsyncConnection, claimed: Claim, recovery_point: str, progress: Mapping[str, Any]
) -> Claim:
    """Inside a phase's transaction: the phase is done; a retry resumes after it."""
    merged = {**claimed.progress, **progress}
    await (await asyncpg_of(conn)).execute(
        "UPDATE idempotency_keys SET recovery_point = $3, progress = $4::text::jsonb, "
        "updated_at = now() WHERE scope = $1 AND key = $2",
        claimed.scope,
        claimed.key,
        recovery_point,
        json.dumps(merged, default=str),
    )
    return Claim(claimed.scope, claimed.key, claimed.request_hash, recovery_point, merged)


async def complete(conn: AsyncConnection, claimed: Claim, response: Mapping[str, Any]) -> None:
    """Inside the last phase's transaction: store the response every retry will get."""
    await (await asyncpg_of(conn)).execute(*completion(claimed, response))


def completion(claimed: Claim, response: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """The statement (and its arguments) that stores the response every retry will get."""
    return _COMPLETE, claimed.scope, claimed.key, json.dumps(response, default=str)


_COMPLETE = (
    "UPDATE idempotency_keys SET state = 'completed', recovery_point = 'finished', "
    "response = $3::text::jsonb, locked_until = NULL, updated_at = now() "
    "WHERE scope = $1 AND key = $2"
)


async def abandon(engine: AsyncEngine, claimed: Claim) -> None:
    """The request failed validation before doing anything: forget the key."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "DELETE FROM idempotency_keys WHERE scope = :scope AND key = :key "
                "AND state = 'in_progress' AND recovery_point = :started"
            ),
            {"scope": claimed.scope, "key": claimed.key, "started": STARTED},
        )


async def release(engine: AsyncEngine, claimed: Claim) -> None:
    """An unexpected failure: drop the lease so a retry can resume at once."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE idempotency_keys SET locked_until = NULL, updated_at = now() "
                "WHERE scope = :scope AND key = :key AND state = 'in_progress'"
            ),
            {"scope": claimed.scope, "key": claimed.key},
        )


async def purge_expired(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(text("DELETE FROM idempotency_keys WHERE expires_at <= now()"))
        return int(result.rowcount or 0)
