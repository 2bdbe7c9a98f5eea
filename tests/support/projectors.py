"""Stopping a container's projectors at the end of a test without waiting out a poll interval."""

from __future__ import annotations

import asyncio

from gateway.bootstrap.container import Container

WAKE_INTERVAL = 0.02


async def stop_projectors(container: Container) -> None:
    """``container.stop_projectors()``, woken along until it is done.

    A runner told to stop before its first batch (a short test ends while it still prepares)
    misses that wake-up: the batch clears the wake event, and the runner sleeps a whole poll
    interval before it sees the stop. Waking the runners until the stop is done ends that sleep
    at once; a wake-up that lands before the stop only costs the runner one more (empty) batch.
    """
    stopping = asyncio.ensure_future(container.stop_projectors())
    while not stopping.done():
        for runner in container.runners:
            runner.wake()
        await asyncio.wait({stopping}, timeout=WAKE_INTERVAL)
    await stopping
