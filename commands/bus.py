"""Command bus: the one way into the write side.

Every mutation is a command dispatched here. The bus runs it through the same
steps whatever its kind:

1. metadata: the command's idempotency key (if it has one) joins the request
   and correlation ids that every appended event carries;
2. idempotency: a command with a key runs once per (scope, key); a repeat gets
   the stored outcome (``commands.idempotent``);
3. the handler, in one of two shapes:
   - ``register``: ``async (command, uow) -> result`` in one transaction, which
     the bus commits (storing the idempotent outcome in that same transaction).
     A handler that appended without an expected version and lost a race to
     another writer (StreamConflict) is retried from scratch: it reloads the
     stream and decides again, so both edits land in some order;
   - ``register_phased``: ``async (command, phases) -> result`` for sagas that
     commit several times and call the outside world in between (checkout,
     order commands that move money). ``Phases`` opens a unit of work per phase
     and records recovery points under the idempotency key.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from commands import idempotent
from commands.batching import BatchedHandler, BatchFallback
from commands.errors import DomainError, VersionConflict
from commands.sagas_in_flight import SagasInFlight
from commands.store import idempotency
from commands.store.connections import CommandConnections
from commands.store.idempotency import ClaimedKey
from commands.store.ledger.writer import StreamConflict
from commands.store.phases import Phases
from commands.store.unit_of_work import MessageMetadata, UnitOfWork

ResultT = TypeVar("ResultT")
# A session found gone: closed under the driver, or by the server (whose notice of it, read
# while the session sat idle, can also leave the driver's protocol in a state it refuses).
_SESSION_GONE = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command(Generic[ResultT]):
    """Base of imperative command messages; ResultT is what its handler returns."""


class IdempotentCommand(Protocol):
    """A command that runs once per idempotency key, within a scope naming the caller and operation."""

    operation: ClassVar[str]
    # None: the command runs without idempotency (internal callers: seeding, imports).
    idempotency_key: str | None

    def idempotency_scope(self, metadata: MessageMetadata) -> str: ...

    def idempotency_request(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class KeyPolicy:
    """How a command type's idempotency keys behave: how a stored outcome is read back, how long a
    claim is leased to the request working on it, and how long a concurrent duplicate waits for it."""

    replay: Callable[[dict[str, Any]], Any]
    lease: timedelta = timedelta(seconds=30)
    wait_seconds: float = 5.0
    # Phased commands: run the first phase without asking first whether the key is known; a
    # repeat is then found by the phase's own claim of the key (or by its refusal, which then
    # asks). One round trip fewer for every new key. Only for a first phase that does nothing
    # outside its transaction before it claims the key (see ``idempotent.run``).
    optimistic: bool = False
    # Told of each refusal the caller gets (not of one a repeat met in its phase and then
    # replayed the stored outcome instead): for per-outcome metrics.
    on_refused: Callable[[DomainError], None] | None = None


Handler = Callable[[Any, UnitOfWork], Awaitable[Any]]
PhasedHandler = Callable[[Any, Phases], Awaitable[Any]]


Validate = Callable[[Any], None]
FirstLock = Callable[[Any], str]


@dataclass(frozen=True)
class _Route:
    handler: Handler | None
    phased: PhasedHandler | None
    keys: KeyPolicy | None
    # Input shape, checked before a key is claimed or anything read: bad input leaves no trace.
    validate: Validate | None
    # The advisory lock the handler takes first (or a phased one's first phase), taken with the
    # transaction's BEGIN (``UnitOfWork(lock=...)``). Only where that lock comes first anyway: lock
    # order is what keeps two commands from deadlocking.
    first_lock: FirstLock | None = None
    # The handler writes in one statement, which commits alone: its unit of work sends no BEGIN
    # and no COMMIT (``UnitOfWork(transaction=False)``).
    one_statement: bool = False


class CommandBus:
    def __init__(self, source: AsyncEngine | CommandConnections, *, max_attempts: int = 8) -> None:
        self._connections = CommandConnections.of(source)
        self._engine = self._connections.engine
        self._routes: dict[type[Any], _Route] = {}
        self._max_attempts = max_attempts
        # Read by this process's projectors, which gather a saga's commits into one batch.
        self.sagas = SagasInFlight()

    def register(
        self,
        command_type: type[Command[ResultT]],
        handler: Handler,
        *,
        keys: KeyPolicy | None = None,
        validate: Validate | None = None,
        first_lock: FirstLock | None = None,
        one_statement: bool = False,
    ) -> None:
        """``keys``: the command type is an IdempotentCommand and runs once per key.
        ``first_lock``: the key of the advisory lock the handler takes before anything else.
        ``one_statement``: the handler reads, then writes everything in one statement (no
        transaction around them: nothing locked, nothing to roll back, no stored outcome)."""
        if one_statement and (keys is not None or first_lock is not None):
            raise ValueError("a handler without a transaction can neither lock nor store an outcome")
        self._routes[command_type] = _Route(handler, None, keys, validate, first_lock, one_statement)

    def register_phased(
        self,
        command_type: type[Command[ResultT]],
        handler: PhasedHandler,
        *,
        keys: KeyPolicy,
        validate: Validate | None = None,
        first_lock: FirstLock | None = None,
    ) -> None:
        """``first_lock``: the key of the advisory lock the first phase takes before anything else."""
        self._routes[command_type] = _Route(None, handler, keys, validate, first_lock)

    async def dispatch(self, command: Command[ResultT], metadata: MessageMetadata) -> ResultT:
        route = self._routes.get(type(command))
        if route is None:
            raise LookupError(f"no handler registered for {type(command).__name__}")
        if route.validate is not None:
            route.validate(command)
        keys = route.keys
        lock = None if route.first_lock is None else route.first_lock(command)
        keyed = cast(IdempotentCommand, command)
        key = keyed.idempotency_key if keys is not None else None
        if keys is None or key is None:
            if route.handler is None:
                raise LookupError(f"{type(command).__name__} needs an idempotency key")
            result: ResultT = await self._transaction(
                route.handler, command, metadata, None, lock, transaction=not route.one_statement
            )
            return result
        metadata = metadata.with_idempotency_key(key)

        async def work(claimed: ClaimedKey, first: UnitOfWork | None) -> Any:
            if route.phased is not None:
                phases = Phases(self._connections, metadata, claimed, first)
                try:
                    with self.sagas:
                        return await route.phased(command, phases)
                finally:
                    await phases.close()
            assert route.handler is not None
            return await self._transaction(route.handler, command, metadata, claimed, lock)

        first_phase = (
            None if route.phased is None else (lambda: UnitOfWork(self._connections, metadata, lock=lock))
        )
        try:
            scoped: ResultT = await idempotent.run(
                self._engine,
                operation=keyed.operation,
                scope=keyed.idempotency_scope(metadata),
                key=key,
                request=keyed.idempotency_request(),
                work=work,
                replay=keys.replay,
                lease=keys.lease,
                wait_seconds=keys.wait_seconds,
                first_phase=first_phase,
                optimistic=keys.optimistic,
            )
        except DomainError as refused:
            if keys.on_refused is not None:
                keys.on_refused(refused)
            raise
        return scoped

    async def dispatch_batch(
        self, commands: Sequence[Command[Any]], metadata: MessageMetadata
    ) -> list[Any | DomainError]:
        """Many plain commands in one transaction (bulk loads): each runs in a savepoint, so a
        refused one (a DomainError, returned in its place) is rolled back alone and the rest
        commit together. A command that loses a race with another writer is retried in its
        savepoint, as ``dispatch`` would. Commands with idempotency keys or phases are not batched.

        Consecutive commands of a type whose handler is a ``BatchedHandler`` go through its
        set-based path together, in one savepoint; when that path cannot decide them
        (``BatchFallback``, or a concurrent writer), they are run one by one instead.
        """
        routes = [self._batch_route(command) for command in commands]
        results: list[Any | DomainError] = []
        async with UnitOfWork(self._connections, metadata) as uow:
            for route, group in itertools.groupby(
                zip(routes, commands, strict=True), key=lambda pair: pair[0]
            ):
                run = [command for _, command in group]
                if isinstance(route.handler, BatchedHandler) and len(run) > 1:
                    results.extend(await self._set_based(route, route.handler, run, uow))
                else:
                    results.extend([await self._one_in_batch(route, command, uow) for command in run])
            await uow.commit()
        return results

    def _batch_route(self, command: Command[Any]) -> _Route:
        route = self._routes.get(type(command))
        keyed = route is not None and route.keys is not None
        if route is None or route.handler is None or (keyed and command.idempotency_key is not None):  # type: ignore[attr-defined]
            raise LookupError(f"{type(command).__name__} cannot run in a batch")
        return route

    async def _one_in_batch(self, route: _Route, command: Any, uow: UnitOfWork) -> Any | DomainError:
        assert route.handler is not None
        try:
            if route.validate is not None:
                route.validate(command)
            return await self._retried_in_savepoint(route.handler, command, uow)
        except DomainError as refused:
            return refused

    async def _set_based(
        self, route: _Route, handler: BatchedHandler[Any, Any], run: Sequence[Any], uow: UnitOfWork
    ) -> list[Any | DomainError]:
        outcomes: list[Any | DomainError] = []
        valid: list[Any] = []
        for command in run:
            try:
                if route.validate is not None:
                    route.validate(command)
            except DomainError as refused:
                outcomes.append(refused)
                continue
            outcomes.append(None)
            valid.append(command)
        if not valid:
            return outcomes
        try:
            decided = iter(await self._in_savepoint(handler.many, valid, uow))
        except (BatchFallback, StreamConflict):
            log.debug("set-based batch of %s fell back to one by one", type(run[0]).__name__)
            return [await self._one_in_batch(route, command, uow) for command in run]
        return [next(decided) if outcome is None else outcome for outcome in outcomes]

    async def _retried_in_savepoint(self, handler: Handler, command: Any, uow: UnitOfWork) -> Any:
        for attempt in range(1, self._max_attempts + 1):
            try:
                return await self._in_savepoint(handler, command, uow)
            except StreamConflict:
                if getattr(command, "expected_version", None) is not None or attempt == self._max_attempts:
                    raise VersionConflict("the target changed concurrently; reload and retry") from None
        raise AssertionError("unreachable")

    @staticmethod
    async def _in_savepoint(handler: Handler, command: Any, uow: UnitOfWork) -> Any:
        savepoint = await uow.conn.begin_nested()
        appended, at_commit = len(uow.appended), uow.at_commit_mark()
        try:
            result = await handler(command, uow)
        except BaseException:
            await savepoint.rollback()
            del uow.appended[appended:]
            uow.forget_at_commit(at_commit)  # rolled back with the savepoint's own statements
            raise
        await savepoint.commit()
        return result

    async def _transaction(
        self,
        handler: Handler,
        command: Any,
        metadata: MessageMetadata,
        claimed: ClaimedKey | None,
        lock: str | None = None,
        *,
        transaction: bool = True,
    ) -> Any:
        fresh = False
        for attempt in range(1, self._max_attempts + 1):
            try:
                async with UnitOfWork(
                    self._connections, metadata, lock=lock, transaction=transaction, fresh=fresh
                ) as uow:
                    result = await handler(command, uow)
                    if claimed is not None:
                        # The outcome is stored in the command's own transaction: both or neither.
                        await idempotency.store_outcome(uow.conn, claimed, result)
                    if not uow.committed:
                        await uow.commit()
                    return result
            except StreamConflict:
                if getattr(command, "expected_version", None) is not None or attempt == self._max_attempts:
                    raise VersionConflict("the target changed concurrently; reload and retry") from None
                log.debug("stream conflict on %s, retrying (attempt %d)", type(command).__name__, attempt)
            except _SESSION_GONE:
                # Without a transaction, the handler's first statement is what finds a kept
                # connection dead (a BEGIN does, and is retried, in ``UnitOfWork``): once more, on
                # a fresh one. A one-statement handler's write that did go through is refused the
                # second time (its row's key), so a retry never writes twice.
                if transaction or fresh:
                    raise
                fresh = True
        raise AssertionError("unreachable")
