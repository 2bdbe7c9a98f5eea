"""SIGTERM and SIGINT as a clean stop for every command.

docker, systemd and Kubernetes stop with SIGTERM, a person with Ctrl-C: both must let the
command release what it started (in-flight requests, projectors, background jobs, embedded
servers). ``run`` runs a command's coroutine with both signals routed to a ``StopSignals``:
until the command hands them to something else (``serve`` hands them to the HTTP server,
which drains), a signal cancels the command's task, so its ``finally`` blocks run. Signals
after the first are ignored: the stop is under way, and interrupting it would leave
servers behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from gateway.bootstrap import event_loop

log = logging.getLogger("gateway.cli")
T = TypeVar("T")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(Exception):
    """A one-shot command was stopped by a signal before it finished."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    def __init__(self, task: asyncio.Task[Any]) -> None:
        self._task = task
        self._handler: Callable[[int], None] | None = None
        self.received: int | None = None

    def _on_signal(self, signum: int) -> None:
        if self.received is not None:
            # Harmless (a signal sent to a whole process group may be passed on to us again).
            log.info("already stopping", extra={"signal": signal.Signals(signum).name})
            return
        self.received = signum
        if self._handler is not None:
            self._handler(signum)
        else:
            self._task.cancel()

    @contextlib.contextmanager
    def handled_by(self, handler: Callable[[int], None]) -> Iterator[None]:
        """While inside, a signal calls ``handler`` instead of cancelling the command."""
        self._handler = handler
        try:
            if self.received is not None:
                handler(self.received)
            yield
        finally:
            self._handler = None


def run(command: Callable[[StopSignals], Coroutine[Any, Any, T]]) -> T:
    """Run ``command`` on a new event loop; raises ``Interrupted`` when a signal cut it short."""

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        stops = StopSignals(task)
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, stops._on_signal, signum)
        try:
            return await command(stops)
        except asyncio.CancelledError:
            if stops.received is None:
                raise
            raise Interrupted(stops.received) from None
        # The handlers stay until the loop closes: a signal during the rest of the teardown
        # must not kill the process by the default action.

    return event_loop.run(guarded())
