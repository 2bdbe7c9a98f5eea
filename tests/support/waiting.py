"""Wait on a condition instead of sleeping for a fixed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

from queries.freshness import MAX_WAIT_SECONDS, FreshnessService, StaleRead

POLL_INTERVAL = 0.02

Predicate = Callable[[], bool | Awaitable[bool]]


async def eventually(
    predicate: Predicate, *, timeout: float = 5.0, interval: float = POLL_INTERVAL, message: str = ""
) -> None:
    """Return as soon as ``predicate()`` is true; fail with ``message`` after ``timeout`` seconds.

    ``predicate`` may be a plain or an async function. It is checked once more at the deadline, so
    a condition that becomes true while the last interval elapses still counts.
    """
    deadline = time.monotonic() + timeout
    while True:
        if await _holds(predicate):
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not reached within {timeout}s: {message or _name(predicate)}")
        await asyncio.sleep(interval)


async def _holds(predicate: Predicate) -> bool:
    result = predicate()
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


def _name(predicate: Predicate) -> str:
    return getattr(predicate, "__qualname__", repr(predicate))


async def read_model_reaches(
    freshness: FreshnessService, projection: str, position: int, timeout: float
) -> None:
    """``freshness.wait_for`` beyond its bound of MAX_WAIT_SECONDS (a reader's wait is capped; a
    test waiting for another process to start and catch up may need longer)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await freshness.wait_for(projection, position, min(MAX_WAIT_SECONDS, deadline - time.monotonic()))
            return
        except StaleRead:
            if time.monotonic() >= deadline:
                raise
