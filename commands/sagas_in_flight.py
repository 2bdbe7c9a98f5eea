"""How many phased commands (sagas) this process is running right now.

A saga commits several times within milliseconds (a checkout: the order, then the payment's
settlement). The projectors of the same process use this count to gather those commits into
one batch instead of one per commit (``projections.runner``): while a saga is in flight, a
commit is most likely followed by another one soon.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


class SagasInFlight:
    def __init__(self) -> None:
        self.count = 0
        self._on_idle: list[Callable[[], None]] = []

    def on_idle(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the last saga in flight ends."""
        self._on_idle.append(listener)

    @property
    def active(self) -> bool:
        return self.count > 0

    def __enter__(self) -> SagasInFlight:
        self.count += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.count -= 1
        if self.count == 0:
            for listener in self._on_idle:
                listener()
