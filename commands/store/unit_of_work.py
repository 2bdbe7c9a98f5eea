"""Unit of work: one PostgreSQL transaction for owned tables and ledger appends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields, replace
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.events.base import Event
from commands.store.ledger import reader, writer
from commands.store.ledger.reader import RecordedEvent


@dataclass(frozen=True)
class MessageMetadata:
    """Who asked and why; copied into every appended event's metadata."""

    request_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    idempotency_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every value, and each append asks for this.
        return {name: value for name in _METADATA_FIELDS if (value := getattr(self, name)) is not None}

    def with_idempotency_key(self, key: str) -> MessageMetadata:
        return replace(self, idempotency_key=key)


_METADATA_FIELDS = tuple(f.name for f in fields(MessageMetadata))


class UnitOfWork:
    """Opens a connection and a transaction; commit makes appends and table writes visible together."""

    def __init__(self, engine: AsyncEngine, metadata: MessageMetadata) -> None:
        self._engine = engine
        self.metadata = metadata
        self._conn: AsyncConnection | None = None
        self.appended: list[RecordedEvent] = []
        self.committed = False
        self._before_commit: list[Callable[[], Awaitable[None]]] = []

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("unit of work is not open")
        return self._conn

    @property
    def last_position(self) -> int | None:
        """Ledger position of the last event this unit of work appended."""
        return max((e.position for e in self.appended), default=None)

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._engine.connect()
        await self._conn.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        try:
            if not self.committed:
                await self._conn.rollback()
                self.appended.clear()
        finally:
            await self._conn.close()
            self._conn = None

    async def append(
        self,
        stream_type: str,
        stream_id: str,
        events: Sequence[Event],
        *,
        expected_version: int | None = None,
    ) -> list[RecordedEvent]:
        recorded = await writer.append(
            self.conn,
            stream_type,
            stream_id,
            events,
            expected_version=expected_version,
            metadata=self.metadata.as_dict(),
        )
        self.appended.extend(recorded)
        return recorded

    async def append_to_streams(self, appends: Sequence[tuple[str, str, Event]]) -> list[RecordedEvent]:
        """One event to each of many streams in one statement (``writer.append_to_streams``)."""
        recorded = await writer.append_to_streams(self.conn, appends, metadata=self.metadata.as_dict())
        self.appended.extend(recorded)
        return recorded

    async def load_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        return await reader.load_stream(self.conn, stream_id, after_version)

    def before_commit(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` inside the transaction just before it commits."""
        self._before_commit.append(step)

    async def commit(self) -> None:
        for step in self._before_commit:
            await step()
        # The appends announced themselves (once per transaction: commands.store.ledger.writer).
        await self.conn.commit()
        self.committed = True
