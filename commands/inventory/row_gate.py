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
    __slots__ = ("admitted", "waiting")

    def __init__(self) -> None:
        self.admitted = 0
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
        entered: list[str] = []
        try:
            for sku in sorted(rows_by_sku):
                await self._enter(sku, self.per_row * max(1, rows_by_sku[sku]))
                entered.append(sku)
            yield
        finally:
            for sku in reversed(entered):
                self._leave(sku)

    def waiting(self, sku: str) -> int:
        """Checkouts of this process waiting for ``sku`` (held places not counted)."""
        row = self._rows.get(sku)
        return 0 if row is None else sum(1 for waiter in row.waiting if not waiter.done())

    def holding(self, sku: str) -> int:
        row = self._rows.get(sku)
        return 0 if row is None else row.admitted

    async def _enter(self, sku: str, limit: int) -> None:
        row = self._rows.get(sku)
        if row is None:
            row = self._rows[sku] = _Row()
        if row.admitted < limit and not row.waiting:
            row.admitted += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        row.waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                if waiter in row.waiting:
                    row.waiting.remove(waiter)
                self._forget_if_idle(sku, row)
            else:  # handed a place just as it was cancelled: hand it on
                self._leave(sku)
            raise

    def _leave(self, sku: str) -> None:
        row = self._rows[sku]
        # The place goes straight to the longest waiter (``admitted`` unchanged), so a newcomer
        # cannot pass the queue between a leave and the waiter's wake-up.
        while row.waiting:
            waiter = row.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        row.admitted -= 1
        self._forget_if_idle(sku, row)

    def _forget_if_idle(self, sku: str, row: _Row) -> None:
        # One entry per SKU being bought, not per SKU ever bought.
        if row.admitted == 0 and not row.waiting:
            del self._rows[sku]
