"""The events a process's tail read last, kept so that projectors behind it need no read.

The projectors of a process stand at different checkpoints: one that applied its batch
sooner asks for the events after it while another is still applying. Each such read
went to the ledger, so under steady load every event was read about three times.

A gap-safe read's events are final: every one lies below the xmin horizon of the read's
snapshot, so any event committed later sorts after all of them in (tx_id, position)
order. The events between the read's checkpoint and its last event are therefore the
whole ledger in that range, for good. The window keeps such ranges while they join up
(a read that starts where the window ends extends it) and answers "what follows this
checkpoint" for any checkpoint inside it. At its end it has no answer: only the ledger
knows what came after, so that read goes to the ledger.
"""

from __future__ import annotations

from commands.store.ledger.reader import Checkpoint, RecordedEvent


class EventWindow:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._start: Checkpoint | None = None
        self._events: list[RecordedEvent] = []
        # A checkpoint inside the window -> the index (counted from the first event ever kept)
        # of the event that follows it.
        self._next: dict[Checkpoint, int] = {}
        self._dropped = 0

    def __len__(self) -> int:
        return len(self._events)

    def after(self, checkpoint: Checkpoint, limit: int) -> tuple[list[RecordedEvent], bool] | None:
        """Up to ``limit`` events that follow ``checkpoint``, and whether they reach the window's
        end; None when only the ledger can say."""
        index = self._next.get(checkpoint)
        if index is None:
            return None
        index -= self._dropped
        if index >= len(self._events):
            return None
        return self._events[index : index + limit], index + limit >= len(self._events)

    def learn(self, after: Checkpoint, events: list[RecordedEvent]) -> bool:
        """Keep the events a gap-safe read returned after ``after``; True when the window now
        ends where that read ended."""
        end = self._end()
        if not events:
            return end == after
        if end is None or after > end:
            # Ahead of the window (or no window yet): a new range starts here.
            self._restart(after)
        elif after != end:
            # Inside or behind the window (a rebuild from the start, a read of its own): the
            # window keeps the range the live projectors use.
            return False
        for event in events:
            self._events.append(event)
            self._next[event.checkpoint] = self._dropped + len(self._events)
        if len(self._events) > self._capacity:
            self._drop_oldest(len(self._events) - self._capacity // 2)
        return True

    def _end(self) -> Checkpoint | None:
        if self._events:
            return self._events[-1].checkpoint
        return self._start

    def _restart(self, start: Checkpoint) -> None:
        self._start = start
        self._events = []
        self._next = {start: self._dropped}

    def _drop_oldest(self, count: int) -> None:
        assert self._start is not None
        gone = self._events[:count]
        del self._next[self._start]
        for event in gone[:-1]:
            del self._next[event.checkpoint]
        # The last event dropped is the new start: the checkpoint of a projector standing on it
        # still finds what follows.
        self._start = gone[-1].checkpoint
        self._events = self._events[count:]
        self._dropped += count
