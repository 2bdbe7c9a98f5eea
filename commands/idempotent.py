"""Running a command once per idempotency key: the bus's idempotency step.

A concurrent duplicate (same key, same request) does not fail at once: it
waits, bounded, for the first request to finish and then replays its outcome,
so a double-clicked submit gets the same answer twice. Only when the first
request is still working after the wait does it get IDEMPOTENCY_KEY_IN_PROGRESS.
Business refusals before anything was recorded are not stored (the key is
forgotten, so the same key works once the cause is fixed); an unexpected
failure drops the lease so a retry resumes at once from its recovery point.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.errors import DomainError
from commands.metrics import IDEMPOTENT_REPLAYS
from commands.store import idempotency
from commands.store.idempotency import Claim, ClaimedKey, IdempotencyKeyInProgress, KeyTaken, Outcome
from commands.store.unit_of_work import UnitOfWork

MAX_POLL_SECONDS = 0.25
MAX_SCOPE = 200  # idempotency_keys.scope
KEY_FIELD = ("idempotencyKey",)
ResultT = TypeVar("ResultT", bound=Outcome)


def fit_scope(scope: str) -> str:
    """Scopes name the caller, whose id may be long: past the column's size, a digest stands in."""
    if len(scope) <= MAX_SCOPE:
        return scope
    operation = scope.split(":", 1)[0]
    return f"{operation}:sha256:{hashlib.sha256(scope.encode()).hexdigest()}"


async def claim_waiting(
    engine: AsyncEngine, scope: str, key: str, hashed: str, *, lease: timedelta, wait_seconds: float
) -> Claim:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    delay = 0.02
    while True:
        try:
            return await idempotency.claim(engine, scope, key, hashed, lease=lease, field_path=KEY_FIELD)
        except IdempotencyKeyInProgress:
            if loop.time() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_POLL_SECONDS)


async def run(
    engine: AsyncEngine,
    *,
    operation: str,
    scope: str,
    key: str,
    request: Mapping[str, Any],
    work: Callable[[ClaimedKey, UnitOfWork | None], Awaitable[ResultT]],
    replay: Callable[[dict[str, Any]], ResultT],
    lease: timedelta,
    wait_seconds: float,
    first_phase: Callable[[], UnitOfWork] | None = None,
    optimistic: bool = False,
) -> ResultT:
    """Run ``work`` once for this key, or replay what it returned.

    ``first_phase``: the common case (a key not seen yet) writes the key in the work's first
    transaction (handed to ``work``; see ``Phases``), not in a transaction of its own: a refusal
    in that phase leaves nothing behind. A duplicate that got there first surfaces as
    ``KeyTaken`` (or as the refusal its hold on the cart caused), and this request then waits
    for the first one's outcome like any repeat.

    ``optimistic``: the first phase runs without asking whether the key is known. A repeat then
    meets its earlier try in the phase: the cart it checked out is no longer open (a refusal,
    after which the key is looked up, as for a concurrent duplicate) or, when nothing refuses
    it, the claim at its recovery point finds the key (``KeyTaken``); either way the phase rolls
    back and the repeat replays or resumes like any other.
    """
    idempotency.validate_key(key, KEY_FIELD)
    scope, hashed = fit_scope(scope), idempotency.request_hash(request)
    uow = (
        None
        if first_phase is None
        else await _first_phase_of_new_key(first_phase(), scope, key, look=not optimistic)
    )
    if uow is not None:
        pending = ClaimedKey(Claim(scope, key, hashed), pending=True, lease=lease)
        try:
            return await _run_claimed(engine, pending, work, uow)
        except KeyTaken:
            pass  # a duplicate claimed the key first: wait for its outcome below
        except DomainError:
            # Refused before anything was written. A concurrent duplicate may be why (it holds the
            # cart): if it has claimed the key meanwhile, its outcome is this request's answer too.
            if uow.committed or not await idempotency.exists(engine, scope, key):
                raise
    found = await claim_waiting(engine, scope, key, hashed, lease=lease, wait_seconds=wait_seconds)
    if found.replay is not None:
        IDEMPOTENT_REPLAYS.labels(operation).inc()
        return replay(found.replay)
    return await _run_claimed(engine, ClaimedKey(found), work, None)


async def _first_phase_of_new_key(
    uow: UnitOfWork, scope: str, key: str, *, look: bool = True
) -> UnitOfWork | None:
    """``uow`` opened, unless the key was seen before (a repeat: replay or resume); ``look``
    False: opened without asking."""
    await uow.__aenter__()
    if not look:
        return uow
    try:
        # On the phase's own connection: no checkout just to ask.
        if not await idempotency.exists(uow.conn, scope, key):
            return uow
    except BaseException as error:
        await uow.__aexit__(type(error), error, error.__traceback__)
        raise
    await uow.__aexit__(None, None, None)
    return None


async def _run_claimed(
    engine: AsyncEngine,
    key_state: ClaimedKey,
    work: Callable[[ClaimedKey, UnitOfWork | None], Awaitable[ResultT]],
    first: UnitOfWork | None,
) -> ResultT:
    try:
        result = await work(key_state, first)
    except DomainError:
        if first is not None and not first.committed:
            raise  # the claim was rolled back with the phase: nothing recorded, nothing to undo
        # Removes the key only if no phase recorded progress; otherwise a retry resumes.
        await idempotency.abandon(engine, key_state.claim)
        await idempotency.release(engine, key_state.claim)
        raise
    except BaseException:
        if first is None or first.committed:
            await idempotency.release(engine, key_state.claim)
        raise
    if not key_state.completed:
        async with engine.begin() as conn:
            await idempotency.store_outcome(conn, key_state, result)
    return result
