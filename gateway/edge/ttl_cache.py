"""A small in-process LRU cache whose entries also expire after a TTL."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock

    def get(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` for a fresh entry, ``(False, None)`` otherwise."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0 or self._max <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def discard_where(self, predicate: Callable[[K, V], bool]) -> None:
        for key in [k for k, (_, v) in self._entries.items() if predicate(k, v)]:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()
