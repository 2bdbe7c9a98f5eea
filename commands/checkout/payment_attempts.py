"""The payment attempts ledger: every provider operation, recorded before it is sent.

An attempt is written (status PENDING) in the same transaction as the decision
that needs it, so a crash after that commit leaves a row that a retry,
the provider's webhook or reconciliation settles by its idempotency key. The
key names exactly one operation at the provider; sending it again is safe and
returns the first answer, never a second charge.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.metrics import PAYMENT_OUTCOMES
from commands.payments import (
    IdempotencyMismatch,
    InvalidPaymentRequest,
    PaymentProvider,
    PaymentProviderUnavailable,
    PaymentResult,
)
from commands.store.driver import asyncpg_of
from commands.store.idempotency import request_hash
from commands.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

AUTHORIZE, CAPTURE, VOID, REFUND = "authorize", "capture", "void", "refund"
PENDING, UNKNOWN, FAILED = "PENDING", "UNKNOWN", "FAILED"
UNSETTLED = (PENDING, UNKNOWN)
# What a successful operation of each kind ends in at the provider.
SUCCESS = {AUTHORIZE: "AUTHORIZED", CAPTURE: "CAPTURED", VOID: "VOIDED", REFUND: "REFUNDED"}


@dataclass(frozen=True)
class Attempt:
    id: str
    order_id: str
    operation: str
    idempotency_key: str
    amount: Decimal
    currency: str
    provider_reference: str | None
    status: str
    context: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    # When the provider first said it never received the operation, since our last send.
    provider_missing_since: datetime | None = None

    @property
    def settled(self) -> bool:
        return self.status not in UNSETTLED


@dataclass(frozen=True)
class Outcome:
    """What became of one operation as far as we know: a provider status, PENDING or UNKNOWN."""

    status: str
    provider_reference: str | None = None
    reason: str | None = None
    response: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def known(self) -> bool:
        return self.status not in UNSETTLED

    @classmethod
    def of(cls, result: PaymentResult) -> Outcome:
        return cls(str(result.status), result.provider_reference, result.decline_reason, dict(result.raw))

    @classmethod
    def unknown(cls, reason: str) -> Outcome:
        return cls(UNKNOWN, reason=reason)


def attempt_of(row: Any) -> Attempt:
    """An attempt from a row of ``BY_KEY``'s columns."""
    return Attempt(
        id=str(row["id"]),
        order_id=str(row["order_id"]),
        operation=row["operation"],
        idempotency_key=row["idempotency_key"],
        amount=row["amount"],
        currency=row["currency"].strip(),
        provider_reference=row["provider_reference"],
        status=row["status"],
        context=dict(row["context"] or {}),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        provider_missing_since=row["provider_missing_since"],
    )


_COLUMNS = (
    "id, order_id, operation, idempotency_key, amount, currency, provider_reference, status, context, "
    "created_at, updated_at, provider_missing_since"
)
_RECORD = (
    "INSERT INTO payment_attempts (id, order_id, operation, idempotency_key, request_hash, amount, "
    "currency, provider_reference, status, context, created_at, updated_at) "
    f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, now(), now()) RETURNING {_COLUMNS}"
)
BY_KEY = f"SELECT {_COLUMNS} FROM payment_attempts WHERE idempotency_key = $1"


def locked_by_key(extra_columns: str) -> str:
    """``BY_KEY`` with the row locked and the caller's own columns after the attempt's."""
    return (
        f"SELECT {_COLUMNS}, {extra_columns} FROM payment_attempts WHERE idempotency_key = $1 "
        "FOR UPDATE OF payment_attempts"
    )


_OF_ORDER = (
    f"SELECT {_COLUMNS} FROM payment_attempts WHERE order_id = $1 AND operation = $2 ORDER BY created_at"
)
_MARK = (
    "UPDATE payment_attempts SET status = $2, provider_reference = $3, response = $4::jsonb, "
    "updated_at = now(), provider_missing_since = NULL WHERE id = $1"
)
_BEGIN_SEND = (
    "UPDATE payment_attempts SET updated_at = now(), provider_missing_since = NULL "
    f"WHERE idempotency_key = $1 AND status = ANY($2::text[]) RETURNING {_COLUMNS}"
)
# Only while nobody touched the attempt since it was read ($3): a send since then starts over.
# $4: when the look that found nothing was sent.
_NOTE_FIRST_MISSING = (
    "UPDATE payment_attempts SET provider_missing_since = $4 "
    "WHERE id = $1 AND status = ANY($2::text[]) AND updated_at = $3 AND provider_missing_since IS NULL "
    "RETURNING provider_missing_since"
)
_MISSING_SINCE = (
    "SELECT provider_missing_since FROM payment_attempts "
    "WHERE id = $1 AND status = ANY($2::text[]) AND updated_at = $3 AND provider_missing_since IS NOT NULL"
)
_CLEAR_MISSING = (
    "UPDATE payment_attempts SET provider_missing_since = NULL "  # a row without one is not written
    "WHERE id = $1 AND provider_missing_since IS NOT NULL"
)
_DUE = (
    f"SELECT {_COLUMNS} FROM payment_attempts WHERE status = ANY($1::text[]) "
    "AND updated_at < now() - $2::interval ORDER BY updated_at LIMIT $3"
)


async def record(conn: AsyncConnection, recorded: tuple[str, tuple[Any, ...]]) -> Attempt:
    """Insert the attempt ``recording`` describes."""
    statement, args = recorded
    return attempt_of(await (await asyncpg_of(conn)).fetchrow(statement, *args))


def recording(
    *,
    order_id: str,
    operation: str,
    key: str,
    amount: Decimal,
    currency: str,
    provider_reference: str | None = None,
    context: dict[str, Any] | None = None,
) -> tuple[str, tuple[Any, ...]]:
    """``record``'s statement (``$1``...``$10``, returning the attempt's columns) and arguments,
    for a caller that sends it with its own writes, as a CTE of one statement."""
    hashed = request_hash(
        {
            "operation": operation,
            "order": order_id,
            "amount": amount,
            "currency": currency,
            "reference": provider_reference,
        }
    )
    args = (
        uuid.uuid4(),
        uuid.UUID(order_id),
        operation,
        key,
        hashed,
        amount,
        currency,
        provider_reference,
        PENDING,
        json.dumps(context or {}),
    )
    return _RECORD, args


async def by_key(conn: AsyncConnection, key: str, *, lock: bool = False) -> Attempt | None:
    row = await (await asyncpg_of(conn)).fetchrow(f"{BY_KEY} FOR UPDATE" if lock else BY_KEY, key)
    return None if row is None else attempt_of(row)


async def of_order(conn: AsyncConnection, order_id: str, operation: str) -> list[Attempt]:
    rows = await (await asyncpg_of(conn)).fetch(_OF_ORDER, uuid.UUID(order_id), operation)
    return [attempt_of(row) for row in rows]


async def ensure(
    conn: AsyncConnection,
    *,
    order_id: str,
    operation: str,
    amount: Decimal,
    currency: str,
    provider_reference: str | None,
    context: dict[str, Any] | None = None,
) -> Attempt:
    """The order's unsettled attempt of this kind, or a new one.

    A failed operation is retried under a new key (a key's answer never changes).
    """
    earlier = await of_order(conn, order_id, operation)
    for attempt in earlier:
        if not attempt.settled:
            return attempt
    return await record(
        conn,
        recording(
            order_id=order_id,
            operation=operation,
            key=f"{operation}:{order_id}:{len(earlier) + 1}",
            amount=amount,
            currency=currency,
            provider_reference=provider_reference,
            context=context,
        ),
    )


async def mark(uow: UnitOfWork, attempt: Attempt, outcome: Outcome) -> None:
    """Record what the provider said; a final answer is never overwritten by a vaguer one."""
    marked = _marked(uow, attempt, outcome)
    if marked is not None:
        await (await asyncpg_of(uow.conn)).execute(_MARK, *marked)


def mark_at_commit(uow: UnitOfWork, attempt: Attempt, outcome: Outcome) -> None:
    """``mark``, written with the COMMIT (``commands.store.writes_at_commit``): only for a caller
    that holds the attempt's row locked and reads no attempt of its operation again."""
    marked = _marked(uow, attempt, outcome)
    if marked is not None:
        uow.write_at_commit(_MARK, *marked)


def _marked(
    uow: UnitOfWork, attempt: Attempt, outcome: Outcome
) -> tuple[uuid.UUID, str, str | None, str] | None:
    """``_MARK``'s arguments, or None when the attempt's record stays as it is."""
    if attempt.settled or (outcome.status == UNKNOWN and attempt.status == UNKNOWN):
        return None
    status = outcome.status if outcome.known else UNKNOWN
    # Counted when the mark commits: a settlement rolled back and decided again marks twice.
    uow.after_commit(PAYMENT_OUTCOMES.labels(attempt.operation, status).inc)
    response = outcome.response or {"reason": outcome.reason}
    return (
        uuid.UUID(attempt.id),
        status,
        outcome.provider_reference or attempt.provider_reference,
        json.dumps(response, default=str),
    )


async def begin_send(conn: AsyncConnection, key: str) -> Attempt | None:
    """Claim the attempt for sending now: None if it is settled already.

    Touching ``updated_at`` keeps reconciliation away from an operation that is in flight.
    """
    row = await (await asyncpg_of(conn)).fetchrow(_BEGIN_SEND, key, list(UNSETTLED))
    return None if row is None else attempt_of(row)


@dataclass(frozen=True)
class Missing:
    """The provider's 'never received' for an attempt, as noted."""

    since: datetime  # when the first look that found nothing was sent, since the last send
    # From that first look to this one: zero when this is it, negative when this began earlier.
    missing_for: timedelta


async def note_missing(conn: AsyncConnection, attempt: Attempt, looked_at: datetime) -> Missing | None:
    """Record that the provider, asked at ``looked_at`` (the database's clock), says it never
    received the attempt's operation; None if the attempt was settled, sent again or otherwise
    changed since it was read (``attempt``)."""
    driver = await asyncpg_of(conn)
    key = (uuid.UUID(attempt.id), list(UNSETTLED), attempt.updated_at)
    since = await driver.fetchval(_NOTE_FIRST_MISSING, *key, looked_at)
    if since is not None:
        return Missing(since, timedelta(0))
    since = await driver.fetchval(_MISSING_SINCE, *key)
    if since is None:
        return None
    return Missing(since, looked_at - since)


async def database_now(conn: AsyncConnection) -> datetime:
    now: datetime = await (await asyncpg_of(conn)).fetchval("SELECT clock_timestamp()")
    return now


async def clear_missing(conn: AsyncConnection, attempt: Attempt) -> None:
    """The provider has the operation after all: a later 'never received' starts a new wait."""
    await (await asyncpg_of(conn)).execute(_CLEAR_MISSING, uuid.UUID(attempt.id))


async def due(conn: AsyncConnection, *, older_than: timedelta, limit: int) -> list[Attempt]:
    rows = await (await asyncpg_of(conn)).fetch(_DUE, list(UNSETTLED), older_than, limit)
    return [attempt_of(row) for row in rows]


async def execute(provider: PaymentProvider, attempt: Attempt, *, token: str | None = None) -> Outcome:
    """Send the attempt's operation; any answer we cannot trust is UNKNOWN, never a guess."""
    key, reference = attempt.idempotency_key, attempt.provider_reference or ""
    try:
        if attempt.operation == AUTHORIZE:
            if token is None:
                raise ValueError("an authorization needs the card token")
            result = await provider.authorize(
                idempotency_key=key,
                amount=attempt.amount,
                currency=attempt.currency,
                token=token,
                reference_hint=attempt.order_id,
            )
        elif attempt.operation == CAPTURE:
            result = await provider.capture(
                idempotency_key=key, provider_reference=reference, amount=attempt.amount
            )
        elif attempt.operation == VOID:
            result = await provider.void(idempotency_key=key, provider_reference=reference)
        else:
            result = await provider.refund(
                idempotency_key=key, provider_reference=reference, amount=attempt.amount
            )
    except PaymentProviderUnavailable as exc:
        return Outcome.unknown(f"provider unavailable: {exc}")
    except IdempotencyMismatch as exc:
        log.error("payment idempotency key mismatch", extra={"key": key, "error": str(exc)})
        return Outcome.unknown("idempotency key mismatch at the provider")
    except InvalidPaymentRequest as exc:
        return Outcome(FAILED, reason=f"invalid_request: {exc}"[:500])
    return Outcome.of(result)
