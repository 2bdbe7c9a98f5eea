"""The flash sale again, through the gateway, with the hot SKU's stock spread over buckets
(``inventorySetBuckets``): the same buyers, units and checkout, so the two sales side by side
show what the one-row lock cost (docs/scaling.md, section 8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from benchmarks.harness import Stack, gql
from benchmarks.pg_waits import WaitSampler, WaitSamples
from benchmarks.progress import Progress
from benchmarks.report import BenchResult, fmt_ms, fmt_rate, fmt_ratio, latency_stats, ratio

BUCKETS = 8
SET_BUCKETS = """
mutation($sku: String!, $buckets: Int!, $key: String!) {
  inventorySetBuckets(sku: $sku, buckets: $buckets, idempotencyKey: $key) {
    position userErrors { field code message } level { sku onHand reserved available }
  }
}
"""


@dataclass
class BucketedSale:
    sale: Any  # benchmarks.flash_sale.Sale
    cpu_seconds: dict[str, float | None]
    waits: WaitSamples
    confirmed: int
    oversold: int
    by_status: dict[str, int]


async def run_bucketed(
    stack: Stack, client: Any, units: int, limit: float, progress: Progress
) -> BucketedSale:
    from benchmarks import flash_sale  # the sale's own module imports this one

    sku = f"FLASH-B{BUCKETS}-{stack.run_id}".upper()
    await flash_sale.create_stocked_sku(stack, client, sku, units)
    spread = await gql(
        client,
        SET_BUCKETS,
        {"sku": sku, "buckets": BUCKETS, "key": f"buckets-{sku}"},
        token=stack.admin_token(),
    )
    payload = spread.field("inventorySetBuckets")
    if not payload or payload.get("userErrors") or spread.error_codes:
        raise flash_sale.Unavailable(f"inventorySetBuckets: {spread.describe()}")
    progress.phase(f"gateway, stock in {BUCKETS} buckets: {flash_sale.BUYERS} buyers, {units} units of {sku}")
    cpu_before = stack.cpu.read()
    async with WaitSampler(stack.asyncpg_kwargs()) as waits:
        sale = await flash_sale.gateway_sale(stack, client, sku, units, limit, progress)
    spent = stack.cpu.spent(cpu_before, stack.cpu.read())
    conn = await asyncpg.connect(**stack.asyncpg_kwargs())
    try:
        stock = await flash_sale.stock_state(conn, sku)
    finally:
        await conn.close()
    confirmed = stock.by_status.get("committed", 0) + stock.by_status.get("consumed", 0)
    progress.done(f"{confirmed} confirmed, outcomes {sale.outcomes}")
    return BucketedSale(sale, spent, waits, confirmed, stock.oversold(units, sale.confirmed), stock.by_status)


def report_bucketed(result: BenchResult, stack: Stack, run: BucketedSale, one_row_rate: float) -> None:
    sale = run.sale
    span = sale.last_success - sale.started
    rate = run.confirmed / span if span > 0 else 0.0
    g = latency_stats(sale.latencies)
    ours = stack.cpu.ours_total(run.cpu_seconds) or 0.0
    cpu_ms = 1000 * ours / max(1, sale.confirmed)
    result.row(
        f"stock in {BUCKETS} buckets (`inventorySetBuckets`): confirmed checkouts per second",
        fmt_rate(rate),
        "",
        f"{fmt_ratio(ratio(rate, one_row_rate))} of one row",
    )
    result.row(
        f"stock in {BUCKETS} buckets: checkout p50 / p99; oversold (must be 0)",
        f"{fmt_ms(g['p50'])} / {fmt_ms(g['p99'])}; {run.oversold}",
    )
    result.row(
        f"stock in {BUCKETS} buckets: CPU per unit, ours; backends queued on a row lock (mean)",
        f"{cpu_ms:.1f} ms; {run.waits.mean_row_lock_waiters:.1f}",
    )
    result.metrics["gateway_bucketed"] = {
        "buckets": BUCKETS,
        "confirmed": run.confirmed,
        "rate": round(rate, 1),
        "ms": g,
        "oversold": run.oversold,
        "reservations_by_status": run.by_status,
        "cpu_ms_per_unit": round(cpu_ms, 2),
        "cpu_seconds": run.cpu_seconds,
        "postgres_activity": run.waits.as_dict(),
        "outcomes": sale.outcomes,
    }
    result.samples["gateway_bucketed_checkout_seconds"] = sale.latencies
    if run.oversold:
        result.status = "failed"
