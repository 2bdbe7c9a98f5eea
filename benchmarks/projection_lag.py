"""Projection lag: steady cart writes at several rates; for each write, the time from its
commit to the cart document being readable in the carts read store.

Load: ``AddCartLines`` through the command bus of this process (the same handler the gateway
runs), open loop at a fixed rate (arrivals on a schedule, at most 32 in flight), spread over
a few hundred carts. The gateway process runs the projectors, as it does in production, and
is otherwise idle, so what is measured is the carts projector, not GraphQL.

- commit: ``time.perf_counter()`` when ``dispatch`` returns (the transaction has committed);
- readable: ``time.perf_counter()`` in the gateway process when the carts projection's
  ``apply`` has written the batch holding that event (``/_bench/lag``). Both clocks are
  CLOCK_MONOTONIC, shared by every process on the machine.

A rate is sustained when the generator reached it, every write became readable, and lag did
not grow over the level (median of the last third within 2x + 50 ms of the first third's).
After the sweep, a backlog test pauses the projector, commits a backlog, resumes it and
times the drain: the events per second one carts projector applies when it is saturated,
the ceiling any sustained rate must stay under.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.harness import BENCH_METADATA, Stack, run_workers
from benchmarks.progress import Progress
from benchmarks.report import (
    BenchResult,
    environment,
    fmt_ms,
    fmt_rate,
    latency_stats,
    plot_lag,
    plot_throughput,
)
from commands.messages.cart import AddCartLines, CartActor, CreateCart, LineRequest

NAME = "projection_lag"
TITLE = "Projection lag"
NEEDS_CATALOG = True
PROJECTION = "carts"
MAX_IN_FLIGHT = 32
SKU_POOL = 30
SIZES: dict[str, dict[str, Any]] = {
    "full": {"rates": (25, 50, 100, 200, 400), "seconds": 12.0, "carts": 300, "backlog": 4000},
    "quick": {"rates": (25, 100), "seconds": 4.0, "carts": 50, "backlog": 600},
}
DRAIN_TIMEOUT = 20.0
GUEST = CartActor()


@dataclass
class Level:
    rate: float
    seconds: float
    started: float = 0.0
    issued: int = 0
    issue_seconds: float = 0.0
    errors: int = 0
    commits: list[tuple[int, float]] = field(default_factory=list)
    applied: dict[int, float] = field(default_factory=dict)
    missing: int = 0
    batches: int = 0

    @property
    def achieved(self) -> float:
        return len(self.commits) / max(self.seconds, self.issue_seconds)

    @property
    def generator_limited(self) -> bool:
        return self.achieved < 0.9 * self.rate

    def lags(self) -> list[tuple[float, float]]:
        """(commit time into the level, seconds to readable) for every applied write."""
        return [
            (t - self.started, max(0.0, self.applied[p] - t))
            for p, t in sorted(self.commits)
            if p in self.applied
        ]

    @property
    def growing(self) -> bool:
        lags = [lag for _, lag in sorted(self.lags())]
        if len(lags) < 9:
            return False
        third = len(lags) // 3
        first = sorted(lags[:third])[third // 2]
        last = sorted(lags[-third:])[third // 2]
        return last > 2 * first + 0.05

    @property
    def slope(self) -> float:
        """Least-squares growth of lag over the level, in seconds of lag per second."""
        points = self.lags()
        if len(points) < 2:
            return 0.0
        mean_x = sum(x for x, _ in points) / len(points)
        mean_y = sum(y for _, y in points) / len(points)
        var = sum((x - mean_x) ** 2 for x, _ in points)
        return 0.0 if var == 0 else sum((x - mean_x) * (y - mean_y) for x, y in points) / var

    @property
    def drain_seconds(self) -> float:
        """From the last commit to its write being readable."""
        if not self.commits or self.missing:
            return float("nan")
        last = max(self.applied.get(p, 0.0) for p, _ in self.commits)
        return max(0.0, last - max(t for _, t in self.commits))

    @property
    def sustained(self) -> bool:
        return not self.generator_limited and self.missing == 0 and not self.growing


async def _dispatch_many(stack: Stack, count: int, make: Any, progress: Progress) -> list[Any]:
    """``count`` commands from ``make(i)`` through the bus, ``MAX_IN_FLIGHT`` at a time."""
    results: list[Any] = []
    issued = 0

    async def worker(_: int) -> None:
        nonlocal issued
        while issued < count:
            i = issued
            issued += 1
            results.append(await stack.bus.dispatch(make(i), BENCH_METADATA))
            progress.update(len(results), count)

    await run_workers(MAX_IN_FLIGHT, worker)
    return results


async def _level(
    stack: Stack, level: Level, carts: list[str], skus: list[str], rng: random.Random, progress: Progress
) -> None:
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    total = int(level.rate * level.seconds)
    tasks: set[asyncio.Task[None]] = set()

    async def one(cart: str, sku: str) -> None:
        try:
            result = await stack.bus.dispatch(
                AddCartLines(cart, GUEST, (LineRequest(sku, 1),)), BENCH_METADATA
            )
            committed = time.perf_counter()
            if result.position is not None:
                level.commits.append((result.position, committed))
        except Exception:
            level.errors += 1
        finally:
            gate.release()

    level.started = time.perf_counter()
    for i in range(total):
        delay = level.started + i / level.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await gate.acquire()
        task = asyncio.create_task(one(rng.choice(carts), rng.choice(skus)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        level.issued += 1
        progress.update(level.issued, total, f"{len(level.commits)} committed")
    level.issue_seconds = time.perf_counter() - level.started
    if tasks:
        await asyncio.gather(*tasks)
    found = await stack.control(
        "lag/wait", {"positions": [p for p, _ in level.commits], "timeout": DRAIN_TIMEOUT}
    )
    collected = await stack.control("lag/collect")
    level.applied = {int(p): float(t) for p, t in collected["applied"]}
    level.batches = int(collected["batches"])
    level.missing = int(found["missing"])


async def _backlog(
    stack: Stack, count: int, carts: list[str], skus: list[str], rng: random.Random, progress: Progress
) -> dict[str, Any]:
    """Pause the projector, commit ``count`` writes, resume, time the drain."""
    await stack.control("runner/pause", {"name": PROJECTION})
    try:
        progress.phase(f"backlog: {count} writes while the carts projector is paused")
        commands = [
            AddCartLines(rng.choice(carts), GUEST, (LineRequest(rng.choice(skus), 1),)) for _ in range(count)
        ]
        results = await _dispatch_many(stack, count, commands.__getitem__, progress)
        positions = {r.position for r in results if r.position is not None}
        progress.done()
        await stack.control("lag/collect")
    finally:
        resumed = await stack.control("runner/resume", {"name": PROJECTION})
    progress.phase("backlog: draining")
    found = await stack.control("lag/wait", {"positions": sorted(positions), "timeout": 120})
    collected = await stack.control("lag/collect")
    progress.done()
    start = float(resumed["now"])
    applied = [float(t) - start for p, t in collected["applied"] if int(p) in positions]
    drain = max(applied) if applied else float("nan")
    return {
        "events": len(positions),
        "missing": int(found["missing"]),
        "drain_seconds": round(drain, 3),
        "events_per_second": round(len(applied) / drain, 1) if applied and drain > 0 else None,
        "batches": int(collected["batches"]),
    }


async def run(stack: Stack, progress: Progress) -> BenchResult:
    result = BenchResult(NAME, TITLE, quick=stack.quick, environment=environment(stack.stores))
    size = SIZES["quick" if stack.quick else "full"]
    rng = random.Random(11)
    skus = stack.skus(SKU_POOL)
    progress.phase(f"creating {size['carts']} carts through the command bus")
    created = await _dispatch_many(
        stack,
        size["carts"],
        lambda i: CreateCart(GUEST, "USD", (LineRequest(skus[i % len(skus)], 1),)),
        progress,
    )
    carts = [r.cart_id for r in created]
    progress.done()
    progress.phase("waiting for the carts projection")
    await stack.wait_projections(progress, timeout=120, names={PROJECTION})
    progress.done()

    levels: list[Level] = []
    await stack.control("lag/start")
    try:
        for rate in size["rates"]:
            level = Level(float(rate), size["seconds"])
            progress.phase(f"{rate} writes/s for {size['seconds']:.0f} s")
            await _level(stack, level, carts, skus, rng, progress)
            levels.append(level)
            stats = latency_stats([lag for _, lag in level.lags()])
            progress.done(
                f"achieved {fmt_rate(level.achieved)}, lag p50 {fmt_ms(stats.get('p50'))} p99 "
                f"{fmt_ms(stats.get('p99'))}, {'sustained' if level.sustained else 'NOT sustained'}"
            )
            if not level.sustained:
                break
        backlog = await _backlog(stack, size["backlog"], carts, skus, rng, progress)
    finally:
        await stack.control("lag/stop")

    sustained = [lv.rate for lv in levels if lv.sustained]
    best = max(sustained) if sustained else None
    limited = next((lv for lv in levels if not lv.sustained), None)
    ceiling = backlog["events_per_second"]
    result.status = "ok"
    if best is None:
        verdict = "no rate sustained"
    elif limited is None:
        verdict = f"sustained every rate up to {best:.0f} writes/s (the highest tried)"
    elif limited.generator_limited:
        verdict = (
            f"sustained {best:.0f} writes/s; the load generator topped out at {fmt_rate(limited.achieved)} "
            f"before the projector did"
        )
    else:
        verdict = f"sustained {best:.0f} writes/s; at {limited.rate:.0f}/s lag grew"
    result.headline = f"{verdict}; saturated drain {fmt_rate(ceiling, ' events/s')}"
    for lv in levels:
        stats = latency_stats([lag for _, lag in lv.lags()])
        state = (
            "sustained" if lv.sustained else ("generator-limited" if lv.generator_limited else "lag grows")
        )
        result.row(
            f"{lv.rate:.0f} writes/s offered ({fmt_rate(lv.achieved)} achieved): lag p50 / p99 / max",
            f"{fmt_ms(stats.get('p50'))} / {fmt_ms(stats.get('p99'))} / {fmt_ms(stats.get('max'))}",
            "",
            state,
        )
    result.row(
        "saturated drain (projector paused, backlog, resumed)",
        f"{fmt_rate(ceiling, ' events/s')} ({backlog['events']} events in {backlog['drain_seconds']:.2f} s, "
        f"{backlog['batches']} batches)",
    )
    result.metrics = {
        "levels": [
            {
                "offered": lv.rate,
                "achieved": round(lv.achieved, 1),
                "writes": len(lv.commits),
                "errors": lv.errors,
                "missing": lv.missing,
                "batches": lv.batches,
                "lag_ms": latency_stats([lag for _, lag in lv.lags()]),
                "lag_slope_ms_per_s": round(1000 * lv.slope, 3),
                "drain_after_load_s": round(lv.drain_seconds, 3),
                "growing": lv.growing,
                "generator_limited": lv.generator_limited,
                "sustained": lv.sustained,
            }
            for lv in levels
        ],
        "highest_sustained_rate": best,
        "backlog": backlog,
        "carts": len(carts),
        "max_in_flight": MAX_IN_FLIGHT,
    }
    result.notes.append(
        "Writes are `AddCartLines` (one line) dispatched from the benchmark process over "
        f"{len(carts)} carts, "
        f"at most {MAX_IN_FLIGHT} in flight; lag is commit (dispatch returned) to the carts projector having "
        "written the batch with that event. The projector runs in the gateway process with every "
        "other projector."
    )
    if limited is not None and limited.generator_limited:
        result.notes.append(
            f"At {limited.rate:.0f} writes/s the command path in one load process could not keep "
            "the schedule "
            f"({fmt_rate(limited.achieved)}); the backlog drain gives the projector's own ceiling."
        )
    documents = int((await stack.control("stats", method="GET"))["cart_documents"])
    result.metrics["cart_documents"] = documents
    if stack.settings.mongo_stand_in:
        result.notes.append(
            f"{documents} cart documents in the read store at the end (earlier benchmarks' carts included). "
        )
        result.notes.append(
            "The carts store is the in-memory MongoDB stand-in, which scans whole collections in "
            "Python; a real "
            "MongoDB moves that work out of the gateway process and to an index."
        )
    result.plots.append(
        plot_lag(
            stack.results_dir / f"{NAME}_lag.png",
            "carts projection: commit → readable, per write",
            {f"{lv.rate:.0f}/s": ([x for x, _ in lv.lags()], [y for _, y in lv.lags()]) for lv in levels},
        )
    )
    origin = min((lv.started for lv in levels), default=0.0)
    result.plots.append(
        plot_throughput(
            stack.results_dir / f"{NAME}_throughput.png",
            "cart writes committed and made readable per second, over the whole sweep",
            {
                "committed": [t - origin for lv in levels for _, t in lv.commits],
                "readable (applied)": [t - origin for lv in levels for t in lv.applied.values()],
            },
            unit="writes",
        )
    )
    for lv in levels:
        result.samples[f"lag_seconds_{lv.rate:.0f}_per_s"] = [lag for _, lag in lv.lags()]
    return result
