"""Writes: cart commands per second across 1,000 carts through GraphQL, against the bare
ledger append of the very same events.

1. ``cartCreate`` for every cart (one line each; the payload's ``cart`` makes this a
   read-your-writes round trip, reported on its own);
2. ``cartLinesAdd`` spread at random over the carts, selecting only ``position`` and
   ``userErrors`` (no read): the command path alone;
3. baseline: the events those commands committed, read back from the ledger and appended
   again with ``commands.ledger.append`` (one transaction each, as the bus does) to fresh
   cart streams, in the same order and at the same concurrency, from this process.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import text

from benchmarks.harness import BENCH_METADATA, Stack, gql, run_workers
from benchmarks.progress import Progress
from benchmarks.report import (
    BenchResult,
    environment,
    fmt_ms,
    fmt_rate,
    fmt_ratio,
    latency_stats,
    plot_latency,
    plot_throughput,
    ratio,
)
from commands.events.base import decode_event
from commands.events.cart import CartCreated
from commands.messages.cart import new_cart_id
from commands.store.ledger import writer
from commands.store.ledger.writer import StreamConflict

NAME = "writes"
TITLE = "Writes"
NEEDS_CATALOG = True
CONCURRENCY = 32
SKU_POOL = 40
SIZES = {"full": (1000, 3000, 400), "quick": (100, 300, 100)}  # carts, adds, profiled adds
SEED = 8

CREATE = """
mutation($input: CartCreateInput) {
  cartCreate(input: $input) { cart { id } position userErrors { code message } }
}
"""
ADD = """
mutation($id: ID!, $lines: [CartLineInput!]!) {
  cartLinesAdd(cartId: $id, lines: $lines) { position userErrors { code message } }
}
"""


@dataclasses.dataclass
class Phase:
    label: str
    latencies: list[float] = dataclasses.field(default_factory=list)
    finished: list[float] = dataclasses.field(default_factory=list)
    positions: list[int] = dataclasses.field(default_factory=list)
    started: float = 0.0
    seconds: float = 0.0
    retries: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def record(self, seconds: float, finished: float) -> None:
        self.latencies.append(seconds)
        self.finished.append(finished - self.started)


async def _drive(phase: Phase, count: int, op: Any, progress: Progress) -> None:
    next_index = 0

    async def worker(_: int) -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            await op(i)
            progress.update(len(phase.latencies), count)

    phase.started = time.perf_counter()
    await run_workers(CONCURRENCY, worker)
    phase.seconds = time.perf_counter() - phase.started


async def run(stack: Stack, progress: Progress) -> BenchResult:
    result = BenchResult(NAME, TITLE, quick=stack.quick, environment=environment(stack.stores))
    carts_wanted, adds_wanted, profiled = SIZES["quick" if stack.quick else "full"]
    rng = random.Random(SEED)
    skus = stack.skus(SKU_POOL)
    create_lines = [[{"sku": rng.choice(skus), "quantity": 1}] for _ in range(carts_wanted)]
    add_plan = [(rng.randrange(carts_wanted), rng.choice(skus)) for _ in range(adds_wanted + profiled)]
    carts: list[str] = [""] * carts_wanted
    creates, adds = Phase("cartCreate"), Phase("cartLinesAdd")
    failures: list[str] = []

    async with stack.http(CONCURRENCY) as client:

        async def create(i: int) -> None:
            # A create whose cart could not be read back in time (STALE_READ) leaves no cart id:
            # it is counted and the cart is created again.
            while True:
                response = await gql(client, CREATE, {"input": {"lines": create_lines[i]}})
                payload = response.field("cartCreate")
                if payload and not payload["userErrors"] and payload["cart"]:
                    break
                failures.append(f"cartCreate: {response.describe()}")
                if len(failures) > max(20, carts_wanted // 5):
                    raise RuntimeError(f"cartCreate keeps failing: {failures[0]}")
            carts[i] = payload["cart"]["id"]
            creates.positions.append(int(payload["position"]))
            creates.record(response.seconds, response.finished)

        def add_op(phase: Phase, offset: int) -> Any:
            async def add(i: int) -> None:
                cart, sku = add_plan[offset + i]
                response = await gql(client, ADD, {"id": carts[cart], "lines": [{"sku": sku, "quantity": 1}]})
                payload = response.field("cartLinesAdd")
                if not payload or payload["position"] is None:
                    failures.append(f"cartLinesAdd: {response.describe()}")
                    if len(failures) > max(20, carts_wanted // 5):
                        raise RuntimeError(f"cartLinesAdd keeps failing: {failures[0]}")
                    return
                phase.positions.append(int(payload["position"]))
                phase.record(response.seconds, response.finished)

            return add

        progress.phase(f"cartCreate x {carts_wanted} through GraphQL ({CONCURRENCY} concurrent)")
        await _drive(creates, carts_wanted, create, progress)
        progress.done(fmt_rate(creates.rate))

        progress.phase(f"cartLinesAdd x {adds_wanted} over {carts_wanted} carts through GraphQL")
        cpu_before = await stack.gateway_cpu()
        await _drive(adds, adds_wanted, add_op(adds, 0), progress)
        cpu_seconds = await stack.gateway_cpu() - cpu_before
        progress.done(fmt_rate(adds.rate))

        progress.phase("baseline: the same events through commands.ledger.append")
        base_creates, base_adds = await _baseline(stack, creates.positions, adds.positions, progress)
        progress.done(f"{fmt_rate(base_creates.rate)} creates, {fmt_rate(base_adds.rate)} adds")

        progress.phase("diagnostic: PostgreSQL commit ceiling with and without NOTIFY")
        ceiling = await commit_ceiling(stack, 1.0 if stack.quick else 3.0)
        progress.done(
            f"{ceiling['plain_tps']:,.0f} tx/s plain, {ceiling['notify_tps']:,.0f} tx/s with pg_notify"
        )

        g, b = latency_stats(adds.latencies), latency_stats(base_adds.latencies)
        if g["p50"] - b["p50"] > b["p50"]:
            progress.phase(f"profiling the gateway over {profiled} more cartLinesAdd")
            extra = Phase("profiled")
            async with stack.profile(NAME) as profiles:
                await _drive(extra, profiled, add_op(extra, adds_wanted), progress)
            result.profiles += profiles
            progress.done()

    c = latency_stats(creates.latencies)
    bc = latency_stats(base_creates.latencies)
    result.status = "ok"
    result.headline = (
        f"{fmt_rate(adds.rate, ' cart commands/s')} through GraphQL vs "
        f"{fmt_rate(base_adds.rate, ' appends/s')} "
        f"bare ({fmt_ratio(ratio(adds.rate, base_adds.rate))}); p50 {fmt_ms(g['p50'])} vs {fmt_ms(b['p50'])}"
    )
    result.row(
        "cartLinesAdd throughput",
        fmt_rate(adds.rate, " cmd/s"),
        fmt_rate(base_adds.rate, " appends/s"),
        fmt_ratio(ratio(adds.rate, base_adds.rate)),
    )
    for q in ("p50", "p95", "p99"):
        result.row(f"cartLinesAdd latency {q}", fmt_ms(g[q]), fmt_ms(b[q]), fmt_ratio(ratio(g[q], b[q])))
    result.row(
        "cartCreate throughput (incl. read-your-writes of the new cart)",
        fmt_rate(creates.rate, " cmd/s"),
        fmt_rate(base_creates.rate, " appends/s"),
        fmt_ratio(ratio(creates.rate, base_creates.rate)),
    )
    result.row(
        "cartCreate latency p50", fmt_ms(c["p50"]), fmt_ms(bc["p50"]), fmt_ratio(ratio(c["p50"], bc["p50"]))
    )
    result.row(
        f"diagnostic: PostgreSQL commits/s, 1-row INSERT, {ceiling['connections']} asyncpg connections",
        "",
        f"{ceiling['plain_tps']:,.0f} tx/s; with `pg_notify` in the transaction "
        f"{ceiling['notify_tps']:,.0f} tx/s",
        f"NOTIFY costs {fmt_ratio(ratio(ceiling['notify_tps'], ceiling['plain_tps']))}",
    )
    cpu_ms = 1000 * cpu_seconds / max(1, len(adds.latencies))
    result.row("gateway CPU per cartLinesAdd (incl. the carts projector)", f"{cpu_ms:.1f} ms")
    result.metrics = {
        "carts": carts_wanted,
        "concurrency": CONCURRENCY,
        "adds": {"rate": round(adds.rate, 1), "ms": g, "count": len(adds.latencies)},
        "creates": {"rate": round(creates.rate, 1), "ms": c, "count": len(creates.latencies)},
        "baseline_adds": {"rate": round(base_adds.rate, 1), "ms": b, "retries": base_adds.retries},
        "baseline_creates": {"rate": round(base_creates.rate, 1), "ms": bc},
        "throughput_ratio": ratio(adds.rate, base_adds.rate),
        "latency_ratio_p50": ratio(g["p50"], b["p50"]),
        "gateway_cpu_ms_per_add": round(cpu_ms, 2),
        "failed_commands": len(failures),
        "commit_ceiling": ceiling,
    }
    result.notes.append(
        f"{carts_wanted} carts, {len(adds.latencies)} cartLinesAdd (one line, quantity 1, {SKU_POOL} SKUs) "
        f"at {CONCURRENCY} concurrent requests over {CONCURRENCY} pooled connections. The gateway path "
        "is HTTP, the edge (auth, limits, cost budget in Redis), GraphQL, and the cart handler's transaction "
        "(advisory lock, stream load, catalog prices, append, customer_carts); the baseline is the append "
        "alone. The carts projector runs in the gateway process during both."
    )
    if base_adds.retries:
        result.notes.append(f"Baseline appends retried {base_adds.retries} times on a stream conflict.")
    if failures:
        result.notes.append(f"{len(failures)} commands failed (not in the numbers); first: {failures[0]}")
    result.plots.append(
        plot_latency(
            stack.results_dir / f"{NAME}_latency.png",
            "cart commands: GraphQL vs bare ledger append",
            {
                "cartLinesAdd via GraphQL": adds.latencies,
                "bare append (same events)": base_adds.latencies,
                "cartCreate via GraphQL (read-your-writes)": creates.latencies,
            },
        )
    )
    result.plots.append(
        plot_throughput(
            stack.results_dir / f"{NAME}_throughput.png",
            "cart commands completed per second",
            {"cartLinesAdd via GraphQL": adds.finished, "bare append": base_adds.finished},
            unit="commands",
        )
    )
    result.samples = {
        "gateway_add_seconds": adds.latencies,
        "baseline_append_seconds": base_adds.latencies,
        "gateway_create_seconds": creates.latencies,
        "baseline_create_seconds": base_creates.latencies,
    }
    return result


async def _baseline(
    stack: Stack, create_positions: list[int], add_positions: list[int], progress: Progress
) -> tuple[Phase, Phase]:
    async with stack.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT position, stream_id, type, data, metadata FROM ledger_events WHERE "
                    "position = ANY(:p)"
                ),
                {"p": create_positions + add_positions},
            )
        ).all()
    by_position = {row.position: row for row in rows}
    renamed: dict[str, str] = {}

    def event_of(position: int) -> tuple[str, Any, dict[str, Any]]:
        row = by_position[position]
        if row.stream_id not in renamed:
            renamed[row.stream_id] = new_cart_id()
        new_id = renamed[row.stream_id]
        event = decode_event(row.type, row.data)
        if isinstance(event, CartCreated):
            event = msgspec.structs.replace(event, cart_id=new_id)
        metadata = {**row.metadata, **BENCH_METADATA.as_dict()}
        return f"cart-{new_id}", event, metadata

    creates = [event_of(p) for p in sorted(create_positions)]
    adds = [event_of(p) for p in sorted(add_positions)]
    base_creates, base_adds = Phase("append CartCreated"), Phase("append CartLinesAdded")

    def append_op(phase: Phase, items: list[tuple[str, Any, dict[str, Any]]], expected: int | None) -> Any:
        async def op(i: int) -> None:
            stream, event, metadata = items[i]
            started = time.perf_counter()
            while True:
                try:
                    async with stack.engine.begin() as conn:
                        await writer.append(
                            conn, "cart", stream, [event], expected_version=expected, metadata=metadata
                        )
                except StreamConflict:
                    phase.retries += 1
                    continue
                finished = time.perf_counter()
                phase.record(finished - started, finished)
                return

        return op

    await _drive(base_creates, len(creates), append_op(base_creates, creates, 0), progress)
    await _drive(base_adds, len(adds), append_op(base_adds, adds, None), progress)
    return base_creates, base_adds


async def commit_ceiling(stack: Stack, seconds: float) -> dict[str, Any]:
    """Commits per second PostgreSQL takes for a one-row INSERT, with and without a
    ``pg_notify`` in the same transaction (PostgreSQL takes a database-wide lock while committing
    a transaction that notified: why ledger appends notify after their commit instead)."""
    await stack.engine.dispose()
    connections = max(1, min(CONCURRENCY, await stack.available_connections()))
    kwargs = stack.asyncpg_kwargs()
    table = f"bench_commit_probe_{stack.run_id}"
    pool = await asyncpg.create_pool(min_size=connections, max_size=connections, **kwargs)
    rates: dict[bool, list[float]] = {False: [], True: []}
    try:
        async with pool.acquire() as conn:
            await conn.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, payload text)")
        for notify in (False, True, False, True):
            done = 0
            deadline = time.perf_counter() + seconds / 2

            async def worker(_: int, notify: bool = notify, deadline: float = deadline) -> None:
                nonlocal done
                async with pool.acquire() as conn:
                    while time.perf_counter() < deadline:
                        async with conn.transaction():
                            await conn.execute(f"INSERT INTO {table} (payload) VALUES ('x')")
                            if notify:
                                await conn.execute("SELECT pg_notify('bench_probe', '1')")
                        done += 1

            started = time.perf_counter()
            await run_workers(connections, worker)
            rates[notify].append(done / (time.perf_counter() - started))
        async with pool.acquire() as conn:
            await conn.execute(f"DROP TABLE {table}")
    finally:
        await pool.close()
    return {
        "connections": connections,
        "plain_tps": round(sum(rates[False]) / len(rates[False]), 1),
        "notify_tps": round(sum(rates[True]) / len(rates[True]), 1),
    }
