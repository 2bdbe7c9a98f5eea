"""Handlers with a set-based path for bulk loads (``CommandBus.dispatch_batch``).

A bulk load sends hundreds of commands of one type in one transaction. Run one by one,
each costs a savepoint and several round trips; a ``BatchedHandler`` decides them all
with the same rules and writes them with a few statements per batch (one per table,
one ledger append), so a batch costs about what one command does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from commands.errors import DomainError
from commands.store.unit_of_work import UnitOfWork

CommandT = TypeVar("CommandT")
ResultT = TypeVar("ResultT")


class BatchFallback(Exception):
    """The set-based path cannot decide this batch (a key repeated in it, a row another
    transaction wrote meanwhile): the bus rolls the batch back and runs its commands one by one."""


@dataclass(frozen=True)
class BatchedHandler(Generic[CommandT, ResultT]):
    """A command handler (``one``, what ``dispatch`` runs) with a set-based path (``many``).

    ``many`` returns one outcome per command, in order: its result, or the DomainError that
    refused it. A refused command leaves no trace; the others append the events ``one``
    would have appended, one command after the other, in the order given.
    """

    one: Callable[[CommandT, UnitOfWork], Awaitable[ResultT]]
    many: Callable[[Sequence[CommandT], UnitOfWork], Awaitable[list[ResultT | DomainError]]]

    async def __call__(self, command: CommandT, uow: UnitOfWork) -> ResultT:
        return await self.one(command, uow)
