"""An in-process LRU cache whose entries also expire after a TTL (``cachetools.TTLCache``).

What this adds to cachetools: a lookup that tells a cached ``None`` from a miss, a cache
switched off by a zero size or TTL, and removal by predicate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast

from cachetools import TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class TtlCache(Generic[K, V]):
    def __init__(
        self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._enabled = max_entries > 0 and ttl_seconds > 0
        self._entries: TTLCache[K, V, float] = TTLCache(max(max_entries, 1), ttl_seconds, clock)

    def get(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` for a fresh entry, ``(False, None)`` otherwise."""
        value = self._entries.get(key, _MISSING)
        if value is _MISSING:
            return False, None
        return True, cast(V, value)

    def put(self, key: K, value: V) -> None:
        if self._enabled:
            self._entries[key] = value

    def discard_where(self, predicate: Callable[[K, V], bool]) -> None:
        for key, value in list(self._entries.items()):
            if predicate(key, value):
                self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
