"""What a multi-phase command handler (a saga) works with instead of one unit of work.

Each phase is its own transaction (``unit_of_work``). A phase that finishes a
step records the recovery point in the same transaction (``reached``), so a
retry under the same idempotency key resumes after it instead of repeating it;
the last phase may store the outcome in its transaction too (``finish``).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

from commands.store import idempotency
from commands.store.connections import CommandConnections
from commands.store.idempotency import Claim, ClaimedKey, KeyTaken, Outcome
from commands.store.unit_of_work import MessageMetadata, UnitOfWork


class _Opened(AbstractAsyncContextManager[UnitOfWork]):
    """A unit of work opened before the handler ran (its transaction holds the key's claim)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __aenter__(self) -> UnitOfWork:
        return self._uow

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._uow.__aexit__(exc_type, exc, tb)


class Phases:
    def __init__(
        self,
        connections: CommandConnections,
        metadata: MessageMetadata,
        key: ClaimedKey,
        first: UnitOfWork | None = None,
    ) -> None:
        self.connections = connections
        self.metadata = metadata
        self._key = key
        self._first = first
        self._uow_of_first: UnitOfWork | None = None
        if first is not None and key.pending:
            first.before_commit(self._write_claim)

    @property
    def claim(self) -> Claim:
        """Where an earlier try under this key got to: ``recovery_point`` and its ``progress``."""
        return self._key.claim

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A new phase's transaction (the first phase may get one already holding the key's claim)."""
        first, self._first = self._first, None
        if first is not None:
            self._uow_of_first = first
            return _Opened(first)
        return UnitOfWork(self.connections, self.metadata)

    async def close(self) -> None:
        """After the handler: roll back a first phase it never used."""
        first, self._first = self._first, None
        if first is not None:
            await first.__aexit__(None, None, None)

    async def reached(self, uow: UnitOfWork, recovery_point: str, progress: Mapping[str, Any]) -> None:
        """Inside the phase's transaction: the step is done; a retry resumes after it."""
        if self._key.pending:
            await self._claim(uow, recovery_point, progress)
            return
        claim = self._key.claim
        self._key.claim = await idempotency.record_progress(uow.conn, claim, recovery_point, progress)

    def claiming(
        self, recovery_point: str, progress: Mapping[str, Any], *, first_parameter: int
    ) -> tuple[str, tuple[Any, ...]] | None:
        """``reached`` for a phase that sends the key's claim with a statement of its own: the
        claim's statement (a CTE returning the key when claimed; parameters numbered from
        ``first_parameter``) and arguments, or None when the key needs no claim (then call
        ``reached``). ``claimed`` takes what the statement returned."""
        if not self._key.pending:
            return None
        claim = self._key.claim
        return idempotency.claiming(
            claim.scope,
            claim.key,
            claim.request_hash,
            lease=self._key.lease,
            recovery_point=recovery_point,
            progress={**claim.progress, **progress},
            first_parameter=first_parameter,
        )

    def claimed(self, recovery_point: str, progress: Mapping[str, Any], *, inserted: bool) -> None:
        """After the statement of ``claiming``: whether it inserted the key (KeyTaken when a
        duplicate holds it: the phase rolls back, as after ``reached``)."""
        if not inserted:
            raise KeyTaken(self._key.claim.key)
        claim = self._key.claim
        self._key.pending = False
        merged = {**claim.progress, **progress}
        self._key.claim = Claim(claim.scope, claim.key, claim.request_hash, recovery_point, merged)

    async def _write_claim(self) -> None:
        if self._key.pending and self._uow_of_first is not None:
            await self._claim(self._uow_of_first, self._key.claim.recovery_point, {})

    async def _claim(self, uow: UnitOfWork, recovery_point: str, progress: Mapping[str, Any]) -> None:
        # In the first phase's own transaction, at its first recovery point (the checkout's comes
        # just before the stock row is taken): a request refused in that phase (e.g. out of
        # stock) leaves no key behind, and a duplicate finds the key only once the order exists.
        claiming = self.claiming(recovery_point, progress, first_parameter=1)
        assert claiming is not None  # the key is pending
        self.claimed(recovery_point, progress, inserted=await idempotency.try_claim(uow.conn, claiming))

    async def finish(self, uow: UnitOfWork, outcome: Outcome) -> None:
        """Inside the last phase's transaction: store the outcome every retry will get (written
        with the COMMIT: nothing in the phase reads it back)."""
        idempotency.store_outcome_at_commit(uow, self._key, outcome)
