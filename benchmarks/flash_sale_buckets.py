"""The flash sale again, through the gateway, with the hot SKU's stock spread over buckets
(``inventorySetBuckets``): the same buyers, units and checkout, so the two sales side by side
show what the one-row lock cost (docs/scaling.md, section 8). The sale itself is run by
``benchmarks.flash_sale.bucketed_sale``; this is its mutation, its record and its report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.cores import CoreTime
from benchmarks.harness import Stack
from benchmarks.pg_waits import ConnectionQueue, WaitSamples
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
class MeasuredSale:
    """A gateway sale with what it cost (``benchmarks.flash_sale.measured_sale``)."""

    sale: Any  # benchmarks.flash_sale.Sale (that module reports with this one)
    cpu_seconds: dict[str, float | None]
    waits: WaitSamples
    confirmed: int
    oversold: int
    by_status: dict[str, int]
    queue: ConnectionQueue
    # The gateway's threads on a core and waiting for one during the sale (None: not read).
    core: CoreTime | None = None


def sale_figures(stack: Stack, run: MeasuredSale) -> tuple[float, dict[str, float], float]:
    """Confirmed checkouts per second, checkout latency statistics, our CPU ms per unit sold."""
    sale = run.sale
    span = sale.last_success - sale.started
    rate = run.confirmed / span if span > 0 else 0.0
    ours = stack.cpu.ours_total(run.cpu_seconds) or 0.0
    return rate, latency_stats(sale.latencies), 1000 * ours / max(1, sale.confirmed)


def report_bucketed(result: BenchResult, stack: Stack, run: MeasuredSale, one_row_rate: float) -> None:
    sale = run.sale
    rate, g, cpu_ms = sale_figures(stack, run)
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
    gateway = run.cpu_seconds.get("gateway")
    percent = None if gateway is None or sale.seconds <= 0 else 100 * gateway / sale.seconds
    result.row(
        f"stock in {BUCKETS} buckets: CPU per unit, ours; gateway in % of one core",
        f"{cpu_ms:.1f} ms; {'n/a' if percent is None else f'{percent:.0f}%'}",
    )
    result.row(
        f"stock in {BUCKETS} buckets: backends queued on a row lock / idle in transaction, waiting for "
        "our process (mean)",
        f"{run.waits.mean_row_lock_waiters:.1f} / {run.waits.mean_idle_in_transaction:.1f}",
    )
    waits = run.waits
    if waits.mean_row_lock_waiters >= 1:
        verdict = (
            f"lock waits on the buckets' rows: {waits.mean_row_lock_waiters:.1f} backends queued on average"
        )
    else:
        verdict = (
            f"not the rows ({waits.mean_row_lock_waiters:.1f} backends queued on them): the gateway, at "
            f"{'n/a' if percent is None else f'{percent:.0f}%'} of its one core, with "
            f"{waits.mean_idle_in_transaction:.1f} transactions idle waiting for it"
        )
    result.row(
        f"stock in {BUCKETS} buckets: units of work that waited for one of the gateway's command connections",
        run.queue.describe(),
    )
    result.row(f"stock in {BUCKETS} buckets: what limits throughput", verdict)
    result.metrics["gateway_bucketed"] = {
        "verdict": verdict,
        "buckets": BUCKETS,
        "confirmed": run.confirmed,
        "rate": round(rate, 1),
        "ms": g,
        "oversold": run.oversold,
        "reservations_by_status": run.by_status,
        "cpu_ms_per_unit": round(cpu_ms, 2),
        "cpu_seconds": run.cpu_seconds,
        "seconds": round(sale.seconds, 2),
        "gateway_percent_of_one_core": None if percent is None else round(percent, 1),
        "postgres_activity": run.waits.as_dict(),
        "outcomes": sale.outcomes,
    }
    result.samples["gateway_bucketed_checkout_seconds"] = sale.latencies
    if run.oversold:
        result.status = "failed"
