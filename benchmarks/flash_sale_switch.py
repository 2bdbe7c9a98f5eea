"""The flash sale a third time, on a SKU that starts in one row with the automatic hot-SKU switch
on (``commands/inventory/hot_switch.py``): no admin flags it, the gateway's background job
spreads it once it is reserved fast enough. Reported beside the one-row and the bucketed sales:
how long the switch took, and what the sale made of it (docs/scaling.md, section 8)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from benchmarks.flash_sale_buckets import MeasuredSale, sale_figures
from benchmarks.harness import Stack
from benchmarks.progress import Progress
from benchmarks.report import BenchResult, fmt_ms, fmt_rate, fmt_ratio, ratio

# The gateway's default threshold (STOCK_HOT_RESERVATIONS_PER_SECOND); the benchmark's server
# starts with the switch off and turns it on for this sale only.
SWITCH_PER_SECOND = 25.0


@dataclass
class SwitchedSale:
    run: MeasuredSale
    # Seconds from the sale's start until the switch had spread the SKU (None: it did not).
    spread_after: float | None
    buckets: int


async def switched_sale(
    stack: Stack, client: Any, units: int, limit: float, progress: Progress
) -> SwitchedSale:
    # Imported here: benchmarks.flash_sale imports this module for its report.
    from benchmarks.flash_sale import BUYERS, create_stocked_sku, measured_sale

    sku = f"FLASH-AUTO-{stack.run_id}".upper()
    await create_stocked_sku(stack, client, sku, units)
    progress.phase(f"gateway, one row and the hot-SKU switch on: {BUYERS} buyers, {units} units of {sku}")
    await stack.control("hot-switch", {"per_second": SWITCH_PER_SECOND})
    conn = await asyncpg.connect(**stack.asyncpg_kwargs())
    try:
        watching = asyncio.create_task(_spread_after(conn, sku, time.perf_counter()))
        try:
            run = await measured_sale(stack, client, sku, units, limit, progress)
        finally:
            await stack.control("hot-switch", {"per_second": 0})
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        spread_after = watching.result() if not watching.cancelled() else None
        buckets = int(await conn.fetchval("SELECT count(*) FROM inventory_items WHERE sku = $1", sku))
    finally:
        await conn.close()
    progress.done(
        f"{run.confirmed} confirmed, spread after "
        f"{'never' if spread_after is None else f'{spread_after:.1f} s'}, outcomes {run.sale.outcomes}"
    )
    return SwitchedSale(run, spread_after, buckets)


async def _spread_after(conn: Any, sku: str, started: float) -> float:
    """Seconds from ``started`` until the switch's decision for ``sku`` is committed."""
    decided = "SELECT 1 FROM inventory_hot_skus WHERE sku = $1 AND set_by = 'auto'"
    while True:
        if await conn.fetchval(decided, sku) is not None:
            return time.perf_counter() - started
        await asyncio.sleep(0.2)


def report_switched(
    result: BenchResult,
    stack: Stack,
    switched: SwitchedSale,
    one_row_rate: float,
    bucketed_rate: float | None,
) -> None:
    rate, g, cpu_ms = sale_figures(stack, switched.run)
    run, sale = switched.run, switched.run.sale
    compared = f"{fmt_ratio(ratio(rate, one_row_rate))} of one row"
    if bucketed_rate:
        compared += f", {fmt_ratio(ratio(rate, bucketed_rate))} of buckets set by an admin"
    result.row("one row, the hot-SKU switch on: confirmed checkouts per second", fmt_rate(rate), "", compared)
    spread = "never" if switched.spread_after is None else f"{switched.spread_after:.1f} s into the sale"
    result.row(
        "one row, the hot-SKU switch on: spread by the switch; stock rows at the end",
        f"{spread}; {switched.buckets}",
    )
    result.row(
        "one row, the hot-SKU switch on: checkout p50 / p99; oversold (must be 0); CPU per unit, ours",
        f"{fmt_ms(g['p50'])} / {fmt_ms(g['p99'])}; {run.oversold}; {cpu_ms:.1f} ms",
    )
    result.row(
        "one row, the hot-SKU switch on: backends queued on a row lock (mean over the sale)",
        f"{run.waits.mean_row_lock_waiters:.1f}",
    )
    result.metrics["gateway_switched"] = {
        "switch_per_second": SWITCH_PER_SECOND,
        "spread_after_seconds": None if switched.spread_after is None else round(switched.spread_after, 2),
        "stock_rows": switched.buckets,
        "confirmed": run.confirmed,
        "rate": round(rate, 1),
        "ms": g,
        "oversold": run.oversold,
        "cpu_ms_per_unit": round(cpu_ms, 2),
        "cpu_seconds": run.cpu_seconds,
        "postgres_activity": run.waits.as_dict(),
        "outcomes": sale.outcomes,
    }
    result.samples["gateway_switched_checkout_seconds"] = sale.latencies
    # Never spread is reported, not a failure: a short (quick) sale may end before the switch looks.
    if run.oversold:
        result.status = "failed"
