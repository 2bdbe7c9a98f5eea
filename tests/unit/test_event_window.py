"""The tail's window of final events: what follows a checkpoint, from memory or not at all."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from commands.store.ledger.reader import Checkpoint, RecordedEvent
from projections.event_window import EventWindow

_AT = datetime(2026, 1, 1, tzinfo=UTC)


def _event(tx_id: int, position: int) -> RecordedEvent:
    return RecordedEvent(position, tx_id, uuid.uuid4(), "test", "s", 1, "AmountRecorded", {}, {}, _AT)


def _ledger(count: int) -> list[RecordedEvent]:
    # Transactions of one to three events, in (tx_id, position) order as a gap-safe read gives them.
    events: list[RecordedEvent] = []
    tx, position = 100, 0
    while len(events) < count:
        tx += random.randint(1, 3)
        for _ in range(random.randint(1, 3)):
            position += 1
            events.append(_event(tx, position))
    return events[:count]


def _positions(events: list[RecordedEvent] | None) -> list[int] | None:
    return None if events is None else [e.position for e in events]


def test_an_empty_window_knows_nothing() -> None:
    window = EventWindow(100)
    assert window.after(Checkpoint(), 10) is None
    assert window.learn(Checkpoint(), []) is False
    assert len(window) == 0


def test_what_follows_any_checkpoint_inside_the_window_and_nothing_at_its_end() -> None:
    ledger = _ledger(10)
    window = EventWindow(100)
    assert window.learn(Checkpoint(), ledger[:6]) is True

    from_start = window.after(Checkpoint(), 100)
    assert from_start is not None and _positions(from_start[0]) == [1, 2, 3, 4, 5, 6] and from_start[1]
    middle = window.after(ledger[2].checkpoint, 2)
    assert middle is not None and _positions(middle[0]) == [4, 5] and middle[1] is False
    rest = window.after(ledger[2].checkpoint, 3)
    assert rest is not None and _positions(rest[0]) == [4, 5, 6] and rest[1] is True
    # At the end only the ledger knows; a checkpoint the window never saw is not guessed at.
    assert window.after(ledger[5].checkpoint, 10) is None
    assert window.after(Checkpoint(ledger[2].tx_id, ledger[2].position + 1000), 10) is None


def test_a_read_from_the_end_extends_the_window_and_others_do_not() -> None:
    ledger = _ledger(12)
    window = EventWindow(100)
    window.learn(Checkpoint(), ledger[:4])
    assert window.learn(ledger[3].checkpoint, []) is True  # nothing more, read at the end
    assert window.learn(ledger[3].checkpoint, ledger[4:8]) is True
    # A read of its own from inside (or from behind) the window changes nothing.
    assert window.learn(ledger[1].checkpoint, ledger[2:10]) is False
    assert window.learn(Checkpoint(), ledger[:2]) is False
    assert window.learn(ledger[1].checkpoint, []) is False
    found = window.after(Checkpoint(), 100)
    assert found is not None and _positions(found[0]) == list(range(1, 9))


def test_a_read_ahead_of_the_window_starts_a_new_one() -> None:
    ledger = _ledger(12)
    window = EventWindow(100)
    window.learn(Checkpoint(), ledger[:4])
    assert window.learn(ledger[7].checkpoint, ledger[8:11]) is True
    assert window.after(Checkpoint(), 10) is None
    assert window.after(ledger[2].checkpoint, 10) is None
    found = window.after(ledger[7].checkpoint, 10)
    assert found is not None and _positions(found[0]) == [9, 10, 11]


def test_a_full_window_forgets_its_oldest_events_and_still_answers_from_its_new_start() -> None:
    ledger = _ledger(40)
    window = EventWindow(10)
    window.learn(Checkpoint(), ledger[:8])
    window.learn(ledger[7].checkpoint, ledger[8:14])  # 14 > 10: keeps the newest 5
    assert len(window) == 5
    assert window.after(Checkpoint(), 10) is None
    assert window.after(ledger[7].checkpoint, 10) is None
    found = window.after(ledger[8].checkpoint, 10)  # the last event forgotten is the new start
    assert found is not None and _positions(found[0]) == [10, 11, 12, 13, 14]
    window.learn(ledger[13].checkpoint, ledger[14:20])
    found = window.after(ledger[16].checkpoint, 2)
    assert found is not None and _positions(found[0]) == [18, 19]


@dataclass
class _Projector:
    limit: int
    at: int = -1  # the index of the last event applied; -1: none
    seen: list[int] = field(default_factory=list)


def test_projectors_at_their_own_pace_each_see_the_whole_ledger_once_in_order() -> None:
    rng = random.Random(7)
    ledger = _ledger(600)
    window = EventWindow(256)
    projectors = [_Projector(limit) for limit in (5, 17, 40, 100)]
    read_from_ledger = 0
    rebuilt = False
    committed = 0  # the ledger grows while they read it
    while any(p.at < len(ledger) - 1 for p in projectors):
        committed = min(len(ledger), committed + rng.randint(0, 4))
        projector = rng.choice(projectors)
        at, limit = projector.at, projector.limit
        checkpoint = Checkpoint() if at < 0 else ledger[at].checkpoint
        found = window.after(checkpoint, limit)
        if found is not None:
            events, _reaches_end = found
        else:
            # What a gap-safe read there returns: up to the newest commit, at most its limit.
            events = ledger[at + 1 : min(at + 1 + limit, committed)]
            window.learn(checkpoint, events)
            read_from_ledger += len(events)
        assert _positions(events) == [e.position for e in ledger[at + 1 : at + 1 + len(events)]]
        projector.seen.extend(e.position for e in events)
        projector.at = at + len(events)
        if not rebuilt and projector.at > 300:
            # One of them starts over from the beginning (a rebuild) while the others go on.
            rebuilt = True
            projector.at, projector.seen = -1, []
    for projector in projectors:
        assert projector.seen == [e.position for e in ledger]
    # Four projectors and a rebuild applied the ledger five times over; most came from memory.
    assert read_from_ledger < 2 * len(ledger)
