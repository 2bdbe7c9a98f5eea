"""The one-row flash sale again, with the gateway on a core of its own.

On this machine the gateway shares its cores with PostgreSQL's backends, Redis, the payment
sandbox and the load generator, which in a deployment run on machines of their own; the main
sale's report shows how long the gateway's loop, always with work to do, waited for a core
they held. Here the gateway gets one core and the others the rest (``benchmarks.cores``), as
separate machines would: what then limits the sale is our process only if its loop fills that
core, and otherwise the stores on theirs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.cores import GATEWAY, Placement, own_core, waiting_share
from benchmarks.flash_sale_buckets import MeasuredSale, sale_figures
from benchmarks.harness import Stack
from benchmarks.progress import Progress
from benchmarks.report import BenchResult, fmt_ms, fmt_rate, fmt_ratio, ratio

# As the main sale's verdict: a loop this busy is the bottleneck, and so are cores this busy.
BUSY_PERCENT = 85.0


@dataclass
class OwnCoreSale:
    run: MeasuredSale
    placement: Placement


async def own_core_sale(
    stack: Stack, client: Any, units: int, limit: float, progress: Progress
) -> OwnCoreSale | None:
    """The sale with ours on cores of their own; None on a machine with one core."""
    # Imported here: benchmarks.flash_sale imports this module for its report.
    from benchmarks.flash_sale import BUYERS, create_stocked_sku, measured_sale

    sku = f"FLASH-CORE-{stack.run_id}".upper()
    await create_stocked_sku(stack, client, sku, units)
    with own_core(stack.cpu.watched) as placement:
        if placement is None:
            return None
        progress.phase(
            f"gateway on a core of its own ({placement.describe()}): {BUYERS} buyers, {units} units of {sku}"
        )
        run = await measured_sale(stack, client, sku, units, limit, progress)
    progress.done(f"{run.confirmed} confirmed, outcomes {run.sale.outcomes}")
    return OwnCoreSale(run, placement)


def report_own_core(result: BenchResult, stack: Stack, sale: OwnCoreSale, one_row_rate: float) -> None:
    run, placement = sale.run, sale.placement
    rate, g, cpu_ms = sale_figures(stack, run)
    wall = run.sale.seconds
    label = "one row, the gateway on a core of its own"
    percent = {
        k: None if v is None or wall <= 0 else 100 * v / wall
        for k, v in run.cpu_seconds.items()
        if "in the kernel" not in k
    }
    # Everything but the gateway shares the other cores (a projector worker too).
    others = {k: v for k, v in percent.items() if k != GATEWAY and v is not None}
    others_total = sum(others.values())
    gateway = percent.get(GATEWAY)
    shares = waiting_share(run.core, wall)
    result.row(
        f"{label}: confirmed checkouts per second",
        fmt_rate(rate),
        "",
        f"{fmt_ratio(ratio(rate, one_row_rate))} of sharing the cores",
    )
    result.row(
        f"{label}: checkout p50 / p99; oversold (must be 0); CPU per unit, ours",
        f"{fmt_ms(g['p50'])} / {fmt_ms(g['p99'])}; {run.oversold}; {cpu_ms:.1f} ms",
    )
    result.row(
        f"{label}: CPU in % of one core ({placement.describe()})",
        ", ".join(f"{k} {v:.0f}%" for k, v in percent.items() if v is not None),
    )
    idle = None if shares is None else max(0.0, 100 - shares[0] - shares[1])
    result.row(
        f"{label}: the gateway's threads on a core / waiting for one / neither (idle, awaiting answers)",
        "n/a" if shares is None or idle is None else f"{shares[0]:.0f}% / {shares[1]:.0f}% / {idle:.0f}%",
    )
    result.row(
        f"{label}: backends queued on the hot row / idle in transaction, waiting for our process (mean)",
        f"{run.waits.mean_row_lock_waiters:.1f} / {run.waits.mean_idle_in_transaction:.1f}",
    )
    capacity = 100 * len(placement.others)
    if gateway is not None and gateway >= BUSY_PERCENT:
        verdict = f"gateway CPU, even on a core of its own: its event loop at {gateway:.0f}% of it"
    elif others_total >= BUSY_PERCENT / 100 * capacity:
        spent = ", ".join(f"{k} {v:.0f}%" for k, v in sorted(others.items(), key=lambda kv: -kv[1]))
        verdict = (
            f"the stores' cores: {spent}, together {others_total:.0f}% of the {capacity // 100} core(s) "
            f"they share, while the gateway (at {gateway or 0:.0f}% of its own) was idle "
            f"{idle or 0:.0f}% of the sale awaiting their answers"
        )
    elif run.waits.mean_row_lock_waiters >= 1:
        queued = run.waits.mean_row_lock_waiters
        verdict = f"lock waits on the hot row: {queued:.1f} backends queued on average"
    else:
        verdict = (
            f"neither the gateway ({gateway or 0:.0f}% of its core) nor the stores' cores "
            f"({others_total:.0f}% of {capacity}%) nor the row: round trips"
        )
    result.row(f"{label}: what limits throughput", verdict)
    result.metrics["gateway_own_core"] = {
        "placement": placement.describe(),
        "verdict": verdict,
        "confirmed": run.confirmed,
        "rate": round(rate, 1),
        "ms": g,
        "oversold": run.oversold,
        "cpu_ms_per_unit": round(cpu_ms, 2),
        "cpu_percent_of_one_core": {k: None if v is None else round(v, 1) for k, v in percent.items()},
        "gateway_on_core_waiting_idle_percent": None
        if shares is None or idle is None
        else [round(shares[0], 1), round(shares[1], 1), round(idle, 1)],
        "postgres_activity": run.waits.as_dict(),
        "outcomes": run.sale.outcomes,
    }
    result.samples["gateway_own_core_checkout_seconds"] = run.sale.latencies
    if run.oversold:
        result.status = "failed"
