"""Command bus: opens a unit of work per command, runs its handler, commits.

A handler that appended without an expected version and lost a race to
another writer (StreamConflict) is retried from scratch: it reloads the
stream and decides again, so both edits land in some order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.errors import VersionConflict
from commands.store.ledger import StreamConflict
from commands.store.unit_of_work import MessageMetadata, UnitOfWork

ResultT = TypeVar("ResultT")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command(Generic[ResultT]):
    """Base of imperative command messages; ResultT is what its handler returns."""


Handler = Callable[[Any, UnitOfWork], Awaitable[Any]]


class CommandBus:
    def __init__(self, engine: AsyncEngine, *, max_attempts: int = 8) -> None:
        self._engine = engine
        self._handlers: dict[type[Any], Handler] = {}
        self._max_attempts = max_attempts

    def register(self, command_type: type[Command[ResultT]], handler: Handler) -> None:
        self._handlers[command_type] = handler

    async def dispatch(self, command: Command[ResultT], metadata: MessageMetadata) -> ResultT:
        handler = self._handlers.get(type(command))
        if handler is None:
            raise LookupError(f"no handler registered for {type(command).__name__}")
        for attempt in range(1, self._max_attempts + 1):
            try:
                async with UnitOfWork(self._engine, metadata) as uow:
                    result: ResultT = await handler(command, uow)
                    if not uow.committed:
                        await uow.commit()
                    return result
            except StreamConflict:
                if getattr(command, "expected_version", None) is not None or attempt == self._max_attempts:
                    raise VersionConflict("the target changed concurrently; reload and retry") from None
                log.debug("stream conflict on %s, retrying (attempt %d)", type(command).__name__, attempt)
        raise AssertionError("unreachable")
