"""Purchase: the CPU one purchase costs, per process, one buyer at a time and 8 at once.

A purchase is ``cartCreate`` with one line then ``checkoutComplete`` with token ``tok_ok``
(the payload asks for ``position`` and ``userErrors`` only, as in the flash sale). Each
buyer has its own customer token, its own loopback source address (``buyer_address``) and
its own SKU with ample stock, so neither per-caller budgets nor a hot inventory row shape
the numbers: this measures the work of a purchase, not contention.

Each phase starts with every projector caught up and ends when they have caught up again,
so the CPU read from ``/proc`` (utime + stime) covers each purchase's whole cost in the
gateway process: the two requests, the payment call, the provider's webhook, and every
projector's work (they run in that process). The payment sandbox, PostgreSQL, Redis and
the benchmark process (load generator and in-memory search engine) are read separately
and reported for information. A third, profiled 8-buyer phase (pyinstrument over the
gateway's event loop) gives the busy time by component; it is not used for the CPU
figures, which the profiler would inflate.

Afterwards every purchase must show as a committed reservation in PostgreSQL and a
CONFIRMED order in the orders read model.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from benchmarks.cpu import CpuMeter
from benchmarks.flash_sale import buy, classify, create_stocked_sku
from benchmarks.harness import Stack, buyer_address, run_workers
from benchmarks.pg_waits import INTERVAL_SECONDS, WaitSampler, WaitSamples
from benchmarks.progress import Progress
from benchmarks.report import BenchResult, environment, fmt_ms, fmt_rate, latency_stats, plot_latency

NAME = "purchase"
TITLE = "Purchase"
NEEDS_CATALOG = False
CONCURRENT = 8
# Purchases: one buyer at a time, 8 buyers at once, 8 buyers under the profiler.
SIZES = {"full": (200, 600, 300), "quick": (24, 80, 40)}
WARMUP = 8
STOCK_PER_SKU = 1_000_000
PROJECTION_WAIT_SECONDS = 120.0
# Each phase stops at this bound even when fewer purchases were made (a loaded machine).
PHASE_LIMIT_SECONDS = {"full": 60.0, "quick": 12.0}
IDLE_SECONDS = {"full": 5.0, "quick": 3.0}


@dataclass
class Phase:
    label: str
    buyers: int
    purchases: int = 0
    seconds: float = 0.0  # first request to last answer
    catch_up_seconds: float = 0.0  # last answer to every projector caught up
    purchase_latencies: list[float] = field(default_factory=list)
    cart_latencies: list[float] = field(default_factory=list)
    checkout_latencies: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    first_failures: dict[str, str] = field(default_factory=dict)
    cpu_seconds: dict[str, float | None] = field(default_factory=dict)
    waits: WaitSamples | None = None  # PostgreSQL backends' waits, sampled while requests run

    @property
    def rate(self) -> float:
        return self.purchases / self.seconds if self.seconds > 0 else 0.0

    def cpu_ms_per_purchase(self, label: str) -> float | None:
        return self._per_purchase(self.cpu_seconds.get(label))

    def ours_ms_per_purchase(self, meter: CpuMeter) -> float | None:
        """Gateway and projector worker together: the whole cost of a purchase to us."""
        return self._per_purchase(meter.ours_total(self.cpu_seconds))

    def _per_purchase(self, spent: float | None) -> float | None:
        return None if spent is None or not self.purchases else round(1000 * spent / self.purchases, 2)

    def utilisation(self, label: str) -> float | None:
        """CPU of ``label`` over the phase's wall time (requests and catch-up), in % of one core."""
        spent, wall = self.cpu_seconds.get(label), self.seconds + self.catch_up_seconds
        return None if spent is None or wall <= 0 else round(100 * spent / wall, 1)

    def background_ms_per_purchase(self, idle_percent: float | None) -> float | None:
        """What the process spends anyway (idle rate over the phase's wall time), per purchase."""
        wall = self.seconds + self.catch_up_seconds
        if idle_percent is None or not self.purchases:
            return None
        return round(10 * idle_percent * wall / self.purchases, 2)

    def metrics(self, meter: CpuMeter) -> dict[str, Any]:
        return {
            "buyers": self.buyers,
            "purchases": self.purchases,
            "rate": round(self.rate, 2),
            "seconds": round(self.seconds, 2),
            "catch_up_seconds": round(self.catch_up_seconds, 2),
            "purchase_ms": latency_stats(self.purchase_latencies),
            "cart_ms": latency_stats(self.cart_latencies),
            "checkout_ms": latency_stats(self.checkout_latencies),
            "outcomes": self.outcomes,
            "first_failures": self.first_failures,
            "cpu_seconds": self.cpu_seconds,
            "cpu_ms_per_purchase": {w.label: self.cpu_ms_per_purchase(w.label) for w in meter.watched},
            "ours_cpu_ms_per_purchase": self.ours_ms_per_purchase(meter),
            "cpu_percent_of_one_core": {w.label: self.utilisation(w.label) for w in meter.watched},
            "postgres_activity": None if self.waits is None else self.waits.as_dict(),
        }


class Buyers:
    """Per buyer: a customer token, a client bound to its own source address, its own SKU."""

    def __init__(self, stack: Stack, count: int) -> None:
        self.tokens = [stack.customer_token(self.subject(stack, i)) for i in range(count)]
        self.clients = [stack.http(1, local_address=buyer_address(i)) for i in range(count)]
        self.skus = [f"BUY-{stack.run_id}-{i}".upper() for i in range(count)]

    @staticmethod
    def subject(stack: Stack, i: int) -> str:
        return f"purchase-{stack.run_id}-{i}"

    async def stock(self, stack: Stack) -> None:
        async with stack.http(1) as admin:
            for sku in self.skus:
                await create_stocked_sku(stack, admin, sku, STOCK_PER_SKU)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


async def run_phase(
    stack: Stack, buyers: Buyers, phase: Phase, count: int, limit: float, progress: Progress
) -> None:
    """``count`` purchases by ``phase.buyers`` buyers at once; CPU from caught-up to caught-up."""
    await stack.wait_projections(progress, PROJECTION_WAIT_SECONDS)
    before = stack.cpu.read()
    deadline = time.perf_counter() + limit
    started = time.perf_counter()
    claimed = 0

    async def buyer(i: int) -> None:
        nonlocal claimed
        while claimed < count and time.perf_counter() < deadline:
            claimed += 1
            created, checkout = await buy(buyers.clients[i], buyers.tokens[i], buyers.skus[i], i)
            if checkout is None:
                phase.outcomes["CART_FAILED"] = phase.outcomes.get("CART_FAILED", 0) + 1
                phase.first_failures.setdefault("CART_FAILED", created.describe())
                continue
            outcome, detail = classify(checkout)
            phase.outcomes[outcome] = phase.outcomes.get(outcome, 0) + 1
            if outcome != "CHECKED_OUT":
                phase.first_failures.setdefault(outcome, detail)
                continue
            phase.purchases += 1
            phase.cart_latencies.append(created.seconds)
            phase.checkout_latencies.append(checkout.seconds)
            phase.purchase_latencies.append(created.seconds + checkout.seconds)
            progress.update(phase.purchases, count, phase.label)

    if phase.buyers > 1:
        async with WaitSampler(stack.asyncpg_kwargs()) as phase.waits:
            await run_workers(phase.buyers, buyer)
    else:
        await run_workers(phase.buyers, buyer)
    answered = time.perf_counter()
    phase.seconds = answered - started
    await stack.wait_projections(progress, PROJECTION_WAIT_SECONDS)
    phase.catch_up_seconds = time.perf_counter() - answered
    phase.cpu_seconds = stack.cpu.spent(before, stack.cpu.read())


async def measure_idle(stack: Stack, seconds: float) -> dict[str, float | None]:
    """Each process's CPU, in % of one core, while nothing is asked of the stack."""
    before, started = stack.cpu.read(), time.perf_counter()
    await asyncio.sleep(seconds)
    spent, wall = stack.cpu.spent(before, stack.cpu.read()), time.perf_counter() - started
    return {k: None if v is None else round(100 * v / wall, 1) for k, v in spent.items()}


async def _verify(stack: Stack, buyers: Buyers) -> tuple[int, int]:
    """(committed reservations, CONFIRMED orders in the read model) of this benchmark's buyers."""
    conn = await asyncpg.connect(**stack.asyncpg_kwargs())
    try:
        reserved = await conn.fetchval(
            "SELECT coalesce(sum(quantity), 0) FROM inventory_reservations "
            "WHERE sku = ANY($1) AND status IN ('committed', 'consumed')",
            buyers.skus,
        )
        subjects = [Buyers.subject(stack, i) for i in range(len(buyers.skus))]
        confirmed = await conn.fetchval(
            "SELECT count(*) FROM order_view WHERE customer_id = ANY($1) AND status = 'CONFIRMED'",
            subjects,
        )
    finally:
        await conn.close()
    return int(reserved), int(confirmed)


async def run(stack: Stack, progress: Progress) -> BenchResult:
    result = BenchResult(NAME, TITLE, quick=stack.quick, environment=environment(stack.stores))
    mode = "quick" if stack.quick else "full"
    one_count, many_count, profiled_count = SIZES[mode]
    limit = PHASE_LIMIT_SECONDS[mode]
    buyers = Buyers(stack, CONCURRENT)
    try:
        progress.phase(f"stocking {CONCURRENT} SKUs, one per buyer")
        await buyers.stock(stack)
        progress.done()
        progress.phase(f"warm-up: {WARMUP} purchases")
        await run_phase(stack, buyers, Phase("warm-up", CONCURRENT), WARMUP, limit, progress)
        progress.done()
        progress.phase(f"idle: {IDLE_SECONDS[mode]:.0f} s with no requests (background CPU)")
        idle = await measure_idle(stack, IDLE_SECONDS[mode])
        progress.done(", ".join(f"{k} {v}%" for k, v in idle.items()))

        one = Phase("1 buyer at a time", 1)
        progress.phase(f"{one.label}: {one_count} purchases")
        await run_phase(stack, buyers, one, one_count, limit, progress)
        progress.done(_describe(one))

        many = Phase(f"{CONCURRENT} concurrent buyers", CONCURRENT)
        progress.phase(f"{many.label}: {many_count} purchases")
        await run_phase(stack, buyers, many, many_count, limit, progress)
        progress.done(_describe(many))

        profiled = Phase(f"{CONCURRENT} concurrent buyers, profiled", CONCURRENT)
        progress.phase(f"profiling the gateway over {profiled_count} purchases by {CONCURRENT} buyers")
        async with stack.profile(NAME) as profiles:
            await run_phase(stack, buyers, profiled, profiled_count, limit, progress)
        result.profiles += profiles
        progress.done()
    finally:
        await buyers.aclose()
    reserved, confirmed = await _verify(stack, buyers)
    _report(result, stack, one, many, profiled, idle, reserved, confirmed)
    return result


def _describe(phase: Phase) -> str:
    cpu = phase.cpu_ms_per_purchase("gateway")
    p50 = latency_stats(phase.purchase_latencies).get("p50")
    return (
        f"{phase.purchases} purchases, {fmt_rate(phase.rate)}, p50 {fmt_ms(p50)}, "
        f"gateway CPU {cpu if cpu is not None else 'n/a'} ms each; outcomes {phase.outcomes}"
    )


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _report(
    result: BenchResult,
    stack: Stack,
    one: Phase,
    many: Phase,
    profiled: Phase,
    idle: dict[str, float | None],
    reserved: int,
    confirmed: int,
) -> None:
    meter = stack.cpu
    checked_out = sum(p.outcomes.get("CHECKED_OUT", 0) for p in (one, many, profiled)) + WARMUP
    failures = {k: v for p in (one, many, profiled) for k, v in p.outcomes.items() if k != "CHECKED_OUT"}
    ok = not failures and reserved == checked_out and confirmed == checked_out
    result.status = "ok" if ok and one.purchases and many.purchases else "failed"
    o, m = latency_stats(one.purchase_latencies), latency_stats(many.purchase_latencies)
    ours = " + ".join(meter.ours())
    result.headline = (
        f"CPU per purchase ({ours}) {_cpu(one.ours_ms_per_purchase(meter))} (1 buyer) / "
        f"{_cpu(many.ours_ms_per_purchase(meter))} ({CONCURRENT} buyers); purchase p50 "
        f"{fmt_ms(o.get('p50'))} (1 buyer), {fmt_rate(many.rate, ' purchases/s')} at {CONCURRENT}"
    )
    for phase, stats in ((one, o), (many, m)):
        result.row(
            f"{phase.label}: purchase p50 / p99 (cartCreate + checkoutComplete)",
            f"{fmt_ms(stats.get('p50'))} / {fmt_ms(stats.get('p99'))}",
        )
        c, k = latency_stats(phase.cart_latencies), latency_stats(phase.checkout_latencies)
        result.row(
            f"{phase.label}: cartCreate p50 / checkoutComplete p50",
            f"{fmt_ms(c.get('p50'))} / {fmt_ms(k.get('p50'))}",
        )
        result.row(f"{phase.label}: purchases per second", fmt_rate(phase.rate))
        result.row(
            f"{phase.label}: CPU per purchase, ours in total ({ours}, every projector included)",
            _cpu(phase.ours_ms_per_purchase(meter)),
        )
        for watched in meter.watched:
            label = watched.label
            if watched.kernel_only:
                label += " (part of the gateway's figure)"
            elif not watched.ours:
                label += " (not ours, for information)"
            extra = " (incl. every projector)" if watched.label == "gateway" and not stack.worker else ""
            result.row(
                f"{phase.label}: CPU per purchase, {label}{extra}",
                _cpu(phase.cpu_ms_per_purchase(watched.label)),
                f"{phase.utilisation(watched.label)}% of one core",
            )
        result.row(
            f"{phase.label}: of the gateway's, spent anyway at its idle rate",
            _cpu(phase.background_ms_per_purchase(idle.get("gateway"))),
        )
        if phase.waits is not None:
            result.row(
                f"{phase.label}: PostgreSQL backends waiting on a lock (mean / max) / idle in transaction",
                f"{phase.waits.mean_lock_waiters:.1f} / {max(phase.waits.lock_waiters, default=0)} / "
                f"{phase.waits.mean_idle_in_transaction:.1f}",
            )
            result.notes.append(
                f"{phase.label}: `pg_stat_activity` sampled every {INTERVAL_SECONDS} s "
                f"while the requests ran ({phase.waits.samples} samples); mean backends by state / wait: "
                + ", ".join(f"{k} {v}" for k, v in phase.waits.top())
                + "."
            )
    result.row("idle CPU with no requests, % of one core", ", ".join(f"{k} {v}%" for k, v in idle.items()))
    result.row(
        "every purchase committed / CONFIRMED in the orders read model",
        f"{reserved} / {confirmed} of {checked_out}",
    )
    result.metrics = {
        "concurrent": CONCURRENT,
        "warmup": WARMUP,
        "one_buyer": one.metrics(meter),
        "concurrent_buyers": many.metrics(meter),
        "profiled": profiled.metrics(meter),
        "committed_units": reserved,
        "confirmed_orders": confirmed,
        "checked_out": checked_out,
        "idle_cpu_percent_of_one_core": idle,
        "processes": [{"label": w.label, "pid": w.pid, "ours": w.ours} for w in meter.watched],
        "gateway_cpu_ms_per_purchase_one": one.cpu_ms_per_purchase("gateway"),
        "gateway_cpu_ms_per_purchase_concurrent": many.cpu_ms_per_purchase("gateway"),
        "ours_cpu_ms_per_purchase_one": one.ours_ms_per_purchase(meter),
        "ours_cpu_ms_per_purchase_concurrent": many.ours_ms_per_purchase(meter),
        "projector_worker": stack.worker is not None,
    }
    result.notes.append(
        "CPU is utime + stime from /proc for each process, from every projector caught up before "
        "the first purchase to every projector caught up after the last, divided by the purchases; "
        + (
            "the gateway keeps the carts projector (its MongoDB stand-in is in its memory) and the "
            "projector worker runs the others, so the two together are the whole cost of a purchase "
            "to us. "
            if stack.worker
            else "the gateway runs the projectors, so its figure is the whole cost of a purchase to us. "
        )
        + "The payment sandbox runs in its own process. The 'of one core' column is that CPU over the "
        "phase's wall time (requests and projector catch-up). A few `projections` polls by the "
        "harness while waiting for catch-up are included in the gateway figure."
    )
    result.notes.append(
        f"Each buyer: its own customer token, its own loopback source address and its own SKU "
        f"({STOCK_PER_SKU:,} in stock), so no per-caller budget nor hot row is involved. "
        f"{WARMUP} warm-up purchases before the timed phases."
    )
    for label, why in meter.unwatched.items():
        result.notes.append(f"No CPU figure for {label}: {why}.")
    if failures:
        result.notes.append(
            f"Purchases that failed: {failures}; first of each: "
            + "; ".join(f"{k}: {v}" for p in (one, many, profiled) for k, v in p.first_failures.items())
        )
    if reserved != checked_out or confirmed != checked_out:
        result.notes.append(
            f"{checked_out} checkouts succeeded but {reserved} units are committed and {confirmed} "
            "orders CONFIRMED in the read model."
        )
    result.samples = {
        "one_buyer_purchase_seconds": one.purchase_latencies,
        "concurrent_purchase_seconds": many.purchase_latencies,
    }
    result.plots.append(
        plot_latency(
            stack.results_dir / f"{NAME}_latency.png",
            "purchase (cartCreate + checkoutComplete) latency",
            {one.label: one.purchase_latencies, many.label: many.purchase_latencies},
        )
    )
