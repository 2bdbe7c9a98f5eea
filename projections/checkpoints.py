"""Checkpoint rows: where each projector is in the gap-safe ledger order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from commands.store.driver import PgConnection, asyncpg_of
from commands.store.ledger.reader import Checkpoint

CHECKPOINT_CHANNEL = "projection_checkpoint"


@dataclass(frozen=True)
class CheckpointRow:
    name: str
    checkpoint: Checkpoint
    state: str
    last_error: str | None
    failures: int
    updated_at: datetime
    last_applied_at: datetime | None


_SELECT = (
    "SELECT name, tx_id, position, state, last_error, failures, updated_at, last_applied_at "
    "FROM projection_checkpoints"
)


def _row(r: Row[Any]) -> CheckpointRow:
    return CheckpointRow(
        name=r.name,
        checkpoint=Checkpoint(r.tx_id, r.position),
        state=r.state,
        last_error=r.last_error,
        failures=r.failures,
        updated_at=r.updated_at,
        last_applied_at=r.last_applied_at,
    )


async def ensure(conn: AsyncConnection, name: str) -> CheckpointRow:
    await conn.execute(
        text("INSERT INTO projection_checkpoints (name) VALUES (:n) ON CONFLICT (name) DO NOTHING"),
        {"n": name},
    )
    row = await load(conn, name)
    assert row is not None
    return row


async def load(conn: AsyncConnection, name: str) -> CheckpointRow | None:
    result = await conn.execute(text(f"{_SELECT} WHERE name = :n"), {"n": name})
    r = result.first()
    return None if r is None else _row(r)


async def load_all(conn: AsyncConnection) -> list[CheckpointRow]:
    result = await conn.execute(text(f"{_SELECT} ORDER BY name"))
    return [_row(r) for r in result]


class CheckpointMoved(Exception):
    """The stored checkpoint is not where this batch started: another runner (a stale owner, a
    rebuild's take-over) moved it. The batch's transaction must roll back."""


async def advance(
    conn: AsyncConnection | PgConnection, name: str, checkpoint: Checkpoint, expected: Checkpoint
) -> None:
    """Move the checkpoint from ``expected`` (inside the batch's transaction) and announce it at commit.

    Compare-and-set: the fence that makes a lease safe (``projections.lease``). Under READ
    COMMITTED a concurrent mover's commit is waited for and the condition re-checked.
    """
    # One round trip: the update and its announcement (delivered at commit).
    if not await advance_many(await asyncpg_of(conn), [(name, checkpoint, expected)]):
        raise CheckpointMoved(f"the checkpoint of {name} is no longer at {expected}")


async def advance_many(conn: PgConnection, moves: Sequence[tuple[str, Checkpoint, Checkpoint]]) -> int:
    """``advance`` for several projections in one statement: (name, checkpoint, expected) each.
    Returns how many moved; the caller rolls back unless all did."""
    return int(
        await conn.fetchval(
            _ADVANCE_MANY,
            [m[0] for m in moves],
            [m[1].tx_id for m in moves],
            [m[1].position for m in moves],
            [m[2].tx_id for m in moves],
            [m[2].position for m in moves],
            CHECKPOINT_CHANNEL,
        )
    )


# A REBUILDING model keeps serving and advancing; the rebuild ends that state.
_ADVANCE_MANY = (
    "WITH wanted AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], "
    "$5::bigint[]) AS w(name, tx_id, position, was_tx_id, was_position)), "
    "moved AS (UPDATE projection_checkpoints AS c SET tx_id = w.tx_id, position = w.position, "
    "state = CASE WHEN c.state = 'REBUILDING' THEN c.state ELSE 'RUNNING' END, "
    "last_error = NULL, failures = 0, updated_at = now(), last_applied_at = now() "
    "FROM wanted AS w WHERE c.name = w.name AND c.tx_id = w.was_tx_id AND c.position = w.was_position "
    "RETURNING c.name, c.tx_id, c.position), "
    "told AS (SELECT pg_notify($6, name || ':' || tx_id || ':' || position) FROM moved) "
    "SELECT count(*) FROM told"
)


async def clear_failures(conn: AsyncConnection, name: str) -> None:
    """The store answers again: forget the failures (the batch that follows may have nothing to do)."""
    await conn.execute(
        text(
            "UPDATE projection_checkpoints SET failures = 0, last_error = NULL, "
            "state = CASE WHEN state = 'FAILED' THEN 'RUNNING' ELSE state END, updated_at = now() "
            "WHERE name = :n AND (failures > 0 OR last_error IS NOT NULL)"
        ),
        {"n": name},
    )


async def record_failure(conn: AsyncConnection, name: str, error: str, failed_after: int) -> int:
    """Count a failed batch; the state turns FAILED once failures reach ``failed_after``."""
    result = await conn.execute(
        text(
            "UPDATE projection_checkpoints SET failures = failures + 1, last_error = :err, "
            "state = CASE WHEN failures + 1 >= :limit THEN 'FAILED' ELSE state END, updated_at = now() "
            "WHERE name = :n RETURNING failures"
        ),
        {"n": name, "err": error[:4000], "limit": failed_after},
    )
    return int(result.scalar_one())


async def reset(conn: AsyncConnection, name: str) -> None:
    """Start over from the beginning of the ledger (used when a read model is rebuilt)."""
    await conn.execute(
        text(
            "INSERT INTO projection_checkpoints (name) VALUES (:n) ON CONFLICT (name) DO UPDATE SET "
            "tx_id = 0, position = 0, state = 'RUNNING', last_error = NULL, failures = 0, "
            "updated_at = now(), last_applied_at = NULL"
        ),
        {"n": name},
    )


def parse_announcement(payload: str) -> tuple[str, Checkpoint] | None:
    try:
        name, tx_id, position = payload.rsplit(":", 2)
        return name, Checkpoint(int(tx_id), int(position))
    except ValueError:
        return None
