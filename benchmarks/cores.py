"""Which cores the stack's processes run on, and how long the gateway waited for one.

On this benchmark's machine every process shares the same few cores: the gateway, PostgreSQL's
backend per connection, Redis, the payment sandbox and the load generator. A gateway whose loop
always has work is then not on a core all the time it wants one: the kernel also runs a
PostgreSQL backend woken by a query on the gateway's core, and the gateway waits its turn.
``/proc/<pid>/task/<tid>/schedstat`` counts both: nanoseconds on a core, and nanoseconds
runnable but waiting for one.

``own_core`` gives the gateway a core of its own for a while and every other watched process
(PostgreSQL with its backends, Redis, the sandbox, a projector worker, this process) the rest,
as separate machines would; on leaving, every thread of them may run anywhere again. The core
times sum the threads alive when read (the gateway's live as long as it does).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cpu import Watched, children

# The label the stack's gateway process is watched under (``benchmarks.harness``).
GATEWAY = "gateway"


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
    """The cores given to the gateway (``ours``) and to the others while ``own_core`` holds."""

    ours: frozenset[int]
    others: frozenset[int]

    def describe(self) -> str:
        return f"the gateway on core {_cores(self.ours)}, the others on {_cores(self.others)}"


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
    """The gateway alone on the first core, every other process (a projector worker included)
    on the rest; None on one core or without a gateway."""
    if len(available) < 2 or not any(w.label == GATEWAY for w in watched):
        return None
    cores = sorted(available)
    return Placement(frozenset(cores[:1]), frozenset(cores[1:]))


@contextlib.contextmanager
def own_core(watched: Sequence[Watched]) -> Iterator[Placement | None]:
    """While inside: the gateway on a core of its own, the other watched processes on the rest
    (None: one core only, nothing moved). Processes they start meanwhile (a new PostgreSQL
    backend) inherit their parent's cores. Afterwards every one of them may run on every core
    again."""
    available = frozenset(os.sched_getaffinity(0))
    chosen = placement(watched, available)
    if chosen is None:
        yield None
        return
    gateway = {w.pid for w in watched if w.label == GATEWAY}
    # Each process once: the gateway is watched twice (its total, and its kernel share).
    distinct = {w.pid: w for w in watched}
    try:
        for pid, w in distinct.items():
            _pin(_pids(w), chosen.ours if pid in gateway else chosen.others)
        yield chosen
    finally:
        for w in distinct.values():
            _free(w, available)


def _free(watched: Watched, cores: frozenset[int]) -> None:
    """The process first, so children it forks from now on inherit ``cores``; then its children
    until no new one appears (one forked while the first were being freed had the old cores)."""
    _pin([watched.pid], cores)
    if not watched.tree:
        return
    freed: set[int] = set()
    while new := [pid for pid in children(watched.pid) if pid not in freed]:
        _pin(new, cores)
        freed.update(new)


def spent_since(pid: int, before: CoreTime | None) -> CoreTime | None:
    """``pid``'s core time since ``before`` (None when either reading is missing)."""
    after = CoreTime.of(pid)
    return None if before is None or after is None else after.since(before)


def waiting_share(core: CoreTime | None, seconds: float) -> tuple[float, float] | None:
    """Percent of ``seconds`` the process's threads were on a core, and waiting for one."""
    if core is None or seconds <= 0:
        return None
    return 100 * core.on_core / seconds, 100 * core.waiting / seconds
