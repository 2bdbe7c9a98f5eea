"""At most a few of this process's checkouts contend for one stock row at a time.

A hot SKU's buyers all UPDATE one row. In PostgreSQL each of them waits on the holder's
transaction, and every commit wakes every waiter to race for the row again: the CPU a unit costs
PostgreSQL grows with the queue (a bare reserve + insert on one row, 44 clients: 1.1-2.6 ms of
PostgreSQL CPU per unit; the same clients let through 2 or 3 at a time: 0.26-0.65 ms, and more
units per second; ``docs/scaling.md`` section 9, twentieth round). So a checkout waits here, in
this process's queue where waiting costs nothing, until fewer than ``per_row`` of this process's
checkouts hold or wait for each stock row of its SKUs; one of them always waits at the row, so
the row is handed on at its commit without waiting for us.

Admission is in SKU order, the order the rows are locked in, and is taken before any stock row is
locked in the transaction: a checkout waiting here holds no stock row another one waits for.
Each process gates its own checkouts; other writers of the rows (and other processes) still
queue in PostgreSQL, which keeps every invariant: the gate only decides who goes first.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager


class _Row:
    """One SKU's places: how many are held, how many it has (``per_row`` x its stock rows, as
    the latest checkout to arrive saw them), and who waits for one, in arrival order."""

    __slots__ = ("admitted", "limit", "waiting")

    def __init__(self, limit: int) -> None:
        self.admitted = 0
        self.limit = limit
        self.waiting: deque[asyncio.Future[None]] = deque()


class StockRowGate:
    """``per_row`` checkouts admitted per stock row of a SKU (a SKU in 8 buckets admits 8 times
    as many); 0 admits everyone at once."""

    def __init__(self, per_row: int) -> None:
        if per_row < 0:
            raise ValueError("per_row must be 0 (no limit) or more")
        self.per_row = per_row
        self._rows: dict[str, _Row] = {}

    @asynccontextmanager
    async def admitted(self, rows_by_sku: Mapping[str, int]) -> AsyncIterator[None]:
        """Hold a place at every SKU's rows (``rows_by_sku``: SKU -> how many stock rows it has)
        for the body; the places are given on, in arrival order, when it ends."""
        if not self.per_row:
            yield
            return
        entered: list[tuple[str, _Row]] = []
        try:
            for sku in sorted(rows_by_sku):
                row = await self._enter(sku, self.per_row * max(1, rows_by_sku[sku]))
                entered.append((sku, row))
            yield
        finally:
            for sku, row in reversed(entered):
                self._leave(sku, row)

    def waiting(self, sku: str) -> int:
        """Checkouts of this process waiting for a place at ``sku``'s rows."""
        row = self._rows.get(sku)
        return 0 if row is None else sum(1 for waiter in row.waiting if not waiter.done())

    def holding(self, sku: str) -> int:
        """Checkouts of this process holding a place at ``sku``'s rows."""
        row = self._rows.get(sku)
        return 0 if row is None else row.admitted

    def tracked(self) -> int:
        """SKUs with a place held or waited for (the others are forgotten)."""
        return len(self._rows)

    async def _enter(self, sku: str, limit: int) -> _Row:
        row = self._rows.get(sku)
        if row is None:
            row = self._rows[sku] = _Row(limit)
        # The SKU may have been spread over buckets (or gathered) since the others arrived.
        row.limit = limit
        _admit_waiters(row)
        if row.admitted < row.limit and not row.waiting:
            row.admitted += 1
            return row
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        row.waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                if waiter in row.waiting:
                    row.waiting.remove(waiter)
                self._forget_if_idle(sku, row)
            else:  # given a place just as it was cancelled: give it on
                self._leave(sku, row)
            raise
        return row

    def _leave(self, sku: str, row: _Row) -> None:
        row.admitted -= 1
        _admit_waiters(row)
        self._forget_if_idle(sku, row)

    def _forget_if_idle(self, sku: str, row: _Row) -> None:
        # One entry per SKU being bought, not per SKU ever bought; and only this entry: a
        # newcomer may have made a new one for the SKU since this one was emptied.
        if row.admitted == 0 and not row.waiting and self._rows.get(sku) is row:
            del self._rows[sku]


def _admit_waiters(row: _Row) -> None:
    # A place is counted when it is given, not when its waiter wakes: a newcomer arriving in
    # between finds the places taken or the queue not empty, and cannot pass the queue.
    while row.waiting and row.admitted < row.limit:
        waiter = row.waiting.popleft()
        if not waiter.done():
            waiter.set_result(None)
            row.admitted += 1
