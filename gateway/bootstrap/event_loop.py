"""The event loop every process of ours runs on.

uvloop when it is installed (it comes with ``uvicorn[standard]`` on Linux): its loop, timers
and socket transports are C, where asyncio's are Python, and a gateway spends a large share of
its CPU there (one purchase is some forty store round trips and two HTTP requests; see
docs/scaling.md section 9). ``EVENT_LOOP=asyncio`` selects asyncio's own loop (to compare, or
to debug with asyncio's debug mode).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from gateway.environment import ConfigurationError

T = TypeVar("T")

UVLOOP = "uvloop"
ASYNCIO = "asyncio"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for new loops; None means asyncio's default."""
    choice = os.environ.get("EVENT_LOOP", UVLOOP).strip().lower()
    if choice == ASYNCIO:
        return None
    if choice != UVLOOP:
        raise ConfigurationError(f"EVENT_LOOP must be {UVLOOP!r} or {ASYNCIO!r}, not {choice!r}")
    try:
        import uvloop
    except ImportError:  # not on this platform: asyncio's loop does the same work, slower
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
