"""CPU time of the stack's processes, read from ``/proc`` (utime + stime).

Each process is read on its own, so the load generator, the payment sandbox and
PostgreSQL never count as the gateway's. PostgreSQL runs a process per connection: its
figure is the postmaster's own time, what it reaped from backends that exited
(cutime + cstime), and every live child's, so a backend ending between two readings moves
its time from one term to the other without losing it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Fields of /proc/<pid>/stat after the ")" that ends the command name (0-based there):
# state is 0, ppid 1, utime 11, stime 12, cutime 13, cstime 14.
_PPID, _UTIME, _STIME, _CUTIME, _CSTIME = 1, 11, 12, 13, 14


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def process_seconds(pid: int, *, reaped_children: bool = False, kernel_only: bool = False) -> float | None:
    """utime + stime of ``pid`` (plus its reaped children's when asked; stime alone with
    ``kernel_only``); None when gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    if kernel_only:
        return int(fields[_STIME]) / CLOCK_TICKS
    ticks = int(fields[_UTIME]) + int(fields[_STIME])
    if reaped_children:
        ticks += int(fields[_CUTIME]) + int(fields[_CSTIME])
    return ticks / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[_PPID]) == pid:
            found.append(int(entry.name))
    return found


def parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[_PPID])


def process_tree_seconds(root: int) -> float | None:
    """A server that forks a process per connection (PostgreSQL): root, reaped and live children."""
    own = process_seconds(root, reaped_children=True)
    if own is None:
        return None
    return own + sum(process_seconds(child) or 0.0 for child in children(root))


@dataclass(frozen=True)
class Watched:
    """One process whose CPU the benchmarks report; ``tree`` for a forking server;
    ``kernel_only`` for the part of a process's time spent in the kernel (stime)."""

    label: str
    pid: int
    tree: bool = False
    ours: bool = True
    kernel_only: bool = False

    def seconds(self) -> float | None:
        if self.tree:
            return process_tree_seconds(self.pid)
        return process_seconds(self.pid, kernel_only=self.kernel_only)


class CpuMeter:
    """CPU seconds per watched process between ``start`` and ``stop``-style readings."""

    def __init__(self, watched: list[Watched], unwatched: dict[str, str] | None = None) -> None:
        self.watched = watched
        # Processes that could not be found, and why (reported next to the figures).
        self.unwatched = unwatched or {}

    def read(self) -> dict[str, float | None]:
        return {w.label: w.seconds() for w in self.watched}

    def read_one(self, label: str) -> float | None:
        return next((w.seconds() for w in self.watched if w.label == label), None)

    @staticmethod
    def spent(
        before: Mapping[str, float | None], after: Mapping[str, float | None]
    ) -> dict[str, float | None]:
        spent: dict[str, float | None] = {}
        for label, end in after.items():
            start = before.get(label)
            spent[label] = None if start is None or end is None else round(end - start, 3)
        return spent

    def ours(self) -> list[str]:
        return [w.label for w in self.watched if w.ours]

    def ours_total(self, spent: Mapping[str, float | None]) -> float | None:
        """Our processes' CPU together (gateway, and the projector worker when there is one)."""
        values = [spent.get(label) for label in self.ours()]
        return None if any(v is None for v in values) else round(sum(v or 0.0 for v in values), 3)
