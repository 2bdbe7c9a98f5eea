"""Per-document stream-version guard.

The global read is in (tx_id, position) order, which can differ from a
stream's own version order: a transaction that got its xid early may append
a later stream version and still sort first. So each document remembers the
stream version it has folded, and for each incoming event:

- version <= known: already applied (a replay or at-least-once redelivery), skip;
- version == known + 1: apply;
- version > known + 1: a jump; reload the stream from the ledger after the
  known version (ORDER BY stream_version) and apply that contiguous run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from enum import Enum

from commands.store.ledger.reader import RecordedEvent


class Decision(Enum):
    SKIP = "skip"
    APPLY = "apply"
    RELOAD = "reload"


def decide(known_version: int, event_version: int) -> Decision:
    if event_version <= known_version:
        return Decision.SKIP
    if event_version == known_version + 1:
        return Decision.APPLY
    return Decision.RELOAD


Reload = Callable[[str, int], Awaitable[Sequence[RecordedEvent]]]


async def events_to_fold(
    known_version: int, incoming: Sequence[RecordedEvent], reload: Reload
) -> list[RecordedEvent]:
    """The contiguous run of events (one stream) to fold onto a document at ``known_version``."""
    run: list[RecordedEvent] = []
    version = known_version
    for event in sorted(incoming, key=lambda e: e.stream_version):
        decision = decide(version, event.stream_version)
        if decision is Decision.SKIP:
            continue
        if decision is Decision.APPLY:
            run.append(event)
            version = event.stream_version
            continue
        reloaded = await reload(event.stream_id, version)
        run.extend(e for e in reloaded if e.stream_version > version)
        return run
    return run


def group_by_stream(events: Iterable[RecordedEvent]) -> dict[str, list[RecordedEvent]]:
    """Events per stream id, in first-seen order of streams."""
    grouped: dict[str, list[RecordedEvent]] = {}
    for event in events:
        grouped.setdefault(event.stream_id, []).append(event)
    return grouped
