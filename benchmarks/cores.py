"""Which cores the stack's processes run on, and how long the gateway waited for one.

On this benchmark's machine every process shares the same few cores: the gateway, PostgreSQL's
backend per connection, Redis, the payment sandbox and the load generator. A gateway whose loop
always has work is then not on a core all the time it wants one: the kernel also runs a
PostgreSQL backend woken by a query on the gateway's core, and the gateway waits its turn.
``/proc/<pid>/task/<tid>/schedstat`` counts both: nanoseconds on a core, and nanoseconds
runnable but waiting for one.

``own_core`` gives the gateway (and a projector worker) cores of their own for a while and
every other watched process (PostgreSQL with its backends, Redis, the sandbox, this process)
the rest, as separate machines would; on leaving, every thread of them may run anywhere again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cpu import Watched, children


def threads(pid: int) -> list[int]:
    """The thread ids of ``pid`` (empty when it is gone)."""
    try:
        return [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


@dataclass(frozen=True)
class CoreTime:
    """Seconds a process's threads spent on a core and runnable waiting for one, summed."""

    on_core: float
    waiting: float

    @staticmethod
    def of(pid: int) -> CoreTime | None:
        """Read from schedstat now; None when the process is gone or the kernel keeps no schedstat."""
        on_core = waiting = 0
        found = False
        for tid in threads(pid):
            try:
                fields = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
            except OSError:
                continue
            on_core += int(fields[0])
            waiting += int(fields[1])
            found = True
        return CoreTime(on_core / 1e9, waiting / 1e9) if found else None

    def since(self, earlier: CoreTime) -> CoreTime:
        return CoreTime(self.on_core - earlier.on_core, self.waiting - earlier.waiting)


@dataclass(frozen=True)
class Placement:
    """The cores given to our processes and to the others while ``own_core`` holds."""

    ours: frozenset[int]
    others: frozenset[int]

    def describe(self) -> str:
        return f"ours on core {_cores(self.ours)}, the others on {_cores(self.others)}"


def _cores(cores: frozenset[int]) -> str:
    return ", ".join(str(c) for c in sorted(cores))


def _pids(watched: Watched) -> list[int]:
    """The process, and for a forking server (PostgreSQL) every live child too."""
    return [watched.pid, *(children(watched.pid) if watched.tree else [])]


def _pin(pids: Sequence[int], cores: frozenset[int]) -> None:
    for pid in pids:
        for tid in threads(pid):
            # A thread or backend may end between listing and pinning it.
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cores)


def placement(watched: Sequence[Watched], available: frozenset[int]) -> Placement | None:
    """Ours on the first cores (one each, at most half of them), the others on the rest; None
    on one core."""
    ours = [w for w in watched if w.ours]
    if len(available) < 2 or not ours:
        return None
    cores = sorted(available)
    taken = max(1, min(len(ours), len(cores) // 2))
    return Placement(frozenset(cores[:taken]), frozenset(cores[taken:]))


@contextlib.contextmanager
def own_core(watched: Sequence[Watched]) -> Iterator[Placement | None]:
    """While inside: ours on cores of their own, the other watched processes on the rest (None:
    one core only, nothing moved). Processes they start meanwhile (a new PostgreSQL backend)
    inherit their parent's cores. Afterwards every one of them may run on every core again."""
    available = frozenset(os.sched_getaffinity(0))
    chosen = placement(watched, available)
    if chosen is None:
        yield None
        return
    # Each process once: the gateway is watched twice (its total, ours, and its kernel share).
    ours = {w.pid for w in watched if w.ours}
    distinct = {w.pid: w for w in watched}
    try:
        for pid, w in distinct.items():
            _pin(_pids(w), chosen.ours if pid in ours else chosen.others)
        yield chosen
    finally:
        for w in distinct.values():
            _pin(_pids(w), available)


def spent_since(pid: int, before: CoreTime | None) -> CoreTime | None:
    """``pid``'s core time since ``before`` (None when either reading is missing)."""
    after = CoreTime.of(pid)
    return None if before is None or after is None else after.since(before)


def waiting_share(core: CoreTime | None, seconds: float) -> tuple[float, float] | None:
    """Percent of ``seconds`` the process's threads were on a core, and waiting for one."""
    if core is None or seconds <= 0:
        return None
    return 100 * core.on_core / seconds, 100 * core.waiting / seconds
