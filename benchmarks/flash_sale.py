"""Flash sale: 64 concurrent buyers, one hot SKU, each buyer creating a cart and checking
out one unit through GraphQL over HTTP until the stock runs out.

Gateway run: the SKU is created with ``productUpsert`` and stocked with ``inventorySet``;
every buyer (its own customer token) loops ``cartCreate`` (one unit) then
``checkoutComplete`` (``tok_ok``) until it is told OUT_OF_STOCK. Oversold units are
counted from PostgreSQL afterwards (reservations holding stock against what was on hand)
and from the confirmed orders the buyers were given.

Baseline: the bare conditional reservation, i.e. the UPDATE the gateway's reservation
runs plus the reservation INSERT, one transaction per unit, over asyncpg from this
process, at the same concurrency, on another SKU with the same stock, until no row updates.

Checkout is probed first with one real purchase of a separate SKU; if the gateway does
not confirm it (``checkoutComplete`` not built yet, no payment provider, ...), the gateway
half is reported as unavailable with the exact answer, and only the baseline runs.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from benchmarks import pg_reads
from benchmarks.cores import CoreTime, spent_since, waiting_share
from benchmarks.flash_sale_buckets import BUCKETS as SALE_BUCKETS
from benchmarks.flash_sale_buckets import SET_BUCKETS, MeasuredSale, report_bucketed
from benchmarks.flash_sale_cores import OwnCoreSale, own_core_sale, report_own_core
from benchmarks.flash_sale_switch import SwitchedSale, report_switched, switched_sale
from benchmarks.harness import WORKER_LABEL, GqlResponse, Stack, gql, run_workers
from benchmarks.pg_waits import ConnectionQueue, WaitSampler, WaitSamples
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

NAME = "flash_sale"
TITLE = "Flash sale"
NEEDS_CATALOG = False
BUYERS = 64
SIZES = {"full": (2000, 240.0), "quick": (120, 30.0)}  # units, gateway time limit (s)
BASELINE_LIMIT_SECONDS = 60.0
PROFILE_UNITS = {"full": 150, "quick": 30}
PROFILE_LIMIT_SECONDS = {"full": 60.0, "quick": 20.0}
BUCKETS = 8
RW_SIZES = {"full": (192, 60.0), "quick": (32, 15.0)}  # units, time limit (s)
PRICE = "19.99"

UPSERT = """
mutation($input: ProductUpsertInput!) {
  productUpsert(input: $input) { position userErrors { field code message } }
}
"""
STOCK = """
mutation($sku: String!, $onHand: Int!, $key: String!) {
  inventorySet(sku: $sku, onHand: $onHand, idempotencyKey: $key) {
    position userErrors { field code message } level { sku onHand reserved available }
  }
}
"""
CREATE = """
mutation($input: CartCreateInput) {
  cartCreate(input: $input) { cartId position userErrors { code message } }
}
"""
# The timed sale asks for what the command decided (no read of the order): the buyers'
# pace is then the checkout's, not the orders projector's.
CHECKOUT = """
mutation($input: CheckoutInput!) {
  checkoutComplete(input: $input) { position userErrors { field code message } }
}
"""
# The read-your-writes phase asks for the order too, as a storefront would.
CHECKOUT_READ = """
mutation($input: CheckoutInput!) {
  checkoutComplete(input: $input) { order { id status } position userErrors { field code message } }
}
"""

UPDATE_SQL = (
    "UPDATE inventory_items AS i SET reserved = i.reserved + $2, updated_at = now() "
    "WHERE i.sku = $1 AND i.on_hand - i.reserved >= $2 "
    "RETURNING i.sku, i.on_hand, i.reserved, "
    "(SELECT CAST(v.product_id AS text) FROM catalog_variants v WHERE v.sku = i.sku) AS product_id"
)
INSERT_SQL = (
    "INSERT INTO inventory_reservations (id, order_id, sku, quantity, status, expires_at) "
    "VALUES ($1, $2, $3, $4, 'active', now() + interval '15 minutes')"
)


class Unavailable(Exception):
    """The gateway cannot run a checkout yet; the message says what it answered."""


@dataclass
class Sale:
    label: str
    stock: int
    started: float = 0.0
    seconds: float = 0.0
    last_success: float = 0.0
    latencies: list[float] = field(default_factory=list)  # per confirmed unit (checkout / reservation)
    purchase_latencies: list[float] = field(default_factory=list)  # cartCreate + checkout
    cart_latencies: list[float] = field(default_factory=list)
    confirmed_at: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    first_failures: dict[str, str] = field(default_factory=dict)

    @property
    def confirmed(self) -> int:
        return len(self.confirmed_at)

    @property
    def rate(self) -> float:
        span = self.last_success - self.started
        return self.confirmed / span if span > 0 else 0.0

    def outcome(self, name: str, detail: str = "") -> None:
        self.outcomes[name] = self.outcomes.get(name, 0) + 1
        if detail:
            self.first_failures.setdefault(name, detail)


def _address(i: int) -> dict[str, str]:
    return {
        "name": f"Buyer {i}",
        "line1": "1 Bench Street",
        "city": "Testville",
        "postalCode": "12345",
        "countryCode": "US",
    }


def _checkout_input(cart_id: str, version: int | None, i: int) -> dict[str, Any]:
    return {
        "cartId": cart_id,
        "idempotencyKey": f"flash-{uuid.uuid4().hex}",
        "email": f"buyer{i}@example.com",
        "shippingAddress": _address(i),
        "payment": {"token": "tok_ok"},
        "expectedCartVersion": version,
    }


def _ok(response: GqlResponse, name: str, what: str) -> dict[str, Any]:
    payload = response.field(name)
    if payload is None or response.error_codes:
        raise Unavailable(f"{what}: {response.describe()}")
    if payload.get("userErrors"):
        raise Unavailable(f"{what}: userErrors {payload['userErrors']}")
    result: dict[str, Any] = payload
    return result


async def create_stocked_sku(stack: Stack, client: Any, sku: str, units: int) -> None:
    admin = stack.admin_token()
    product = {
        "handle": sku.lower(),
        "title": f"Flash Sale Item {sku}",
        "currencyCode": "USD",
        "variants": [{"sku": sku, "title": "One size", "price": PRICE}],
    }
    _ok(await gql(client, UPSERT, {"input": product}, token=admin), "productUpsert", "productUpsert")
    stocked = await gql(client, STOCK, {"sku": sku, "onHand": units, "key": f"stock-{sku}"}, token=admin)
    _ok(stocked, "inventorySet", "inventorySet")


async def buy(
    client: Any, token: str, sku: str, i: int, query: str = CHECKOUT
) -> tuple[GqlResponse, GqlResponse | None]:
    created = await gql(client, CREATE, {"input": {"lines": [{"sku": sku, "quantity": 1}]}}, token=token)
    payload = created.field("cartCreate")
    if not payload or not payload.get("cartId") or payload.get("userErrors"):
        return created, None
    # The buyer needs only the id the command wrote, not a read of the cart document:
    # a one-line cartCreate is version 1 of its stream.
    variables = {"input": _checkout_input(payload["cartId"], 1, i)}
    return created, await gql(client, query, variables, token=token)


def classify(checkout: GqlResponse) -> tuple[str, str]:
    """(outcome, detail). CHECKED_OUT: the command succeeded (no order asked for); an order
    status when the order was asked for; COMMITTED_BUT_<code> when the command committed but
    reading its order back failed; else the user error or top-level error code."""
    payload = checkout.field("checkoutComplete") or {}
    codes = [e.get("code") for e in payload.get("userErrors") or []]
    if codes:
        return str(codes[0]), str(payload["userErrors"][0].get("message"))
    if checkout.error_codes:
        code = checkout.error_codes[0]
        if payload.get("position") is not None:
            return f"COMMITTED_BUT_{code}", checkout.describe()
        return code, checkout.describe()
    if "order" not in payload:
        if payload.get("position") is None:
            return "NO_POSITION", checkout.describe()
        return "CHECKED_OUT", ""
    order = payload.get("order") or {}
    status = str(order.get("status"))
    return status, "" if status == "CONFIRMED" else f"order {order.get('id')} is {status}"


async def probe_checkout(stack: Stack, client: Any) -> None:
    """One real purchase of a separate, stocked SKU; raises Unavailable unless CONFIRMED."""
    sku = f"FLASH-PROBE-{stack.run_id}".upper()
    await create_stocked_sku(stack, client, sku, 5)
    token = stack.customer_token(f"flash-probe-{stack.run_id}")
    created, checkout = await buy(client, token, sku, 0, CHECKOUT_READ)
    if checkout is None:
        raise Unavailable(f"cartCreate: {created.describe()}")
    outcome, detail = classify(checkout)
    if outcome != "CONFIRMED":
        raise Unavailable(f"checkoutComplete answered {outcome}: {detail}")


async def gateway_sale(
    stack: Stack,
    client: Any,
    sku: str,
    units: int,
    limit: float,
    progress: Progress,
    query: str = CHECKOUT,
    success: str = "CHECKED_OUT",
) -> Sale:
    sale = Sale("gateway", units)
    sold_out = asyncio.Event()
    deadline = time.perf_counter() + limit
    max_attempts = units + 4 * BUYERS
    attempts = 0
    tokens = [stack.customer_token(f"flash-{stack.run_id}-{i}") for i in range(BUYERS)]

    async def buyer(i: int) -> None:
        nonlocal attempts
        while attempts < max_attempts and time.perf_counter() < deadline:
            attempts += 1
            created, checkout = await buy(client, tokens[i], sku, i, query)
            sale.cart_latencies.append(created.seconds)
            if checkout is None:
                sale.outcome("CART_FAILED", created.describe())
                continue
            outcome, detail = classify(checkout)
            sale.outcome(outcome, detail)
            if outcome == success:
                sale.latencies.append(checkout.seconds)
                sale.purchase_latencies.append(created.seconds + checkout.seconds)
                sale.confirmed_at.append(checkout.finished - sale.started)
                sale.last_success = checkout.finished
                progress.update(sale.confirmed, units, f"{outcome}; outcomes {sale.outcomes}")
            elif outcome == "OUT_OF_STOCK":
                sold_out.set()
                return
            elif sum(sale.outcomes.values()) > 20 and sale.confirmed == 0 and query is CHECKOUT:
                raise Unavailable(f"no checkout succeeded in the first 20 attempts: {sale.first_failures}")

    sale.started = time.perf_counter()
    await run_workers(BUYERS, buyer)
    sale.seconds = time.perf_counter() - sale.started
    return sale


async def baseline_sale(
    stack: Stack, units: int, concurrency: int, progress: Progress, buckets: int = 1
) -> Sale:
    """The bare reservation loop. With ``buckets`` > 1 the SKU's stock is split over that many
    rows (``<sku>#<n>``) and each worker starts on its own bucket, moving on when it is empty:
    the stock-bucketing design that lifts the one-row ceiling."""
    base = f"FLASH-BASE{buckets}-{stack.run_id}".upper()
    rows = [base] if buckets == 1 else [f"{base}#{b}" for b in range(buckets)]
    shares = [units // len(rows) + (1 if b < units % len(rows) else 0) for b in range(len(rows))]
    sale = Sale(f"baseline x{buckets}", units)
    kwargs = stack.asyncpg_kwargs()
    setup = await asyncpg.connect(**kwargs)
    try:
        await setup.executemany(
            "INSERT INTO inventory_items (sku, on_hand) VALUES ($1, $2)", list(zip(rows, shares, strict=True))
        )
    finally:
        await setup.close()
    pool = await asyncpg.create_pool(min_size=concurrency, max_size=concurrency, **kwargs)
    deadline = time.perf_counter() + BASELINE_LIMIT_SECONDS
    try:

        async def worker(i: int) -> None:
            bucket, empty_in_a_row = i % len(rows), 0
            async with pool.acquire() as conn:
                while time.perf_counter() < deadline and empty_in_a_row < len(rows):
                    sku = rows[bucket]
                    started = time.perf_counter()
                    async with conn.transaction():
                        row = await conn.fetchrow(UPDATE_SQL, sku, 1)
                        if row is not None:
                            await conn.execute(INSERT_SQL, uuid.uuid4(), uuid.uuid4(), sku, 1)
                    finished = time.perf_counter()
                    if row is None:
                        empty_in_a_row += 1
                        bucket = (bucket + 1) % len(rows)
                        continue
                    empty_in_a_row = 0
                    sale.outcome("CONFIRMED")
                    sale.latencies.append(finished - started)
                    sale.confirmed_at.append(finished - sale.started)
                    sale.last_success = finished
                    progress.update(sale.confirmed, units)
            sale.outcome("OUT_OF_STOCK")

        sale.started = time.perf_counter()
        await run_workers(concurrency, worker)
        sale.seconds = time.perf_counter() - sale.started
        oversold = 0
        for sku, share in zip(rows, shares, strict=True):
            oversold += (await _stock_state(pool, sku)).oversold(share)
        sale.outcomes["oversold"] = oversold + max(0, sale.confirmed - units)
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM inventory_reservations WHERE sku = ANY($1)", rows)
            await conn.execute("DELETE FROM inventory_items WHERE sku = ANY($1)", rows)
    finally:
        await pool.close()
    return sale


@dataclass
class StockState:
    on_hand: int
    reserved: int
    by_status: dict[str, int]

    def oversold(self, units: int, told_confirmed: int = 0) -> int:
        """Units promised beyond the stock: by the reservations holding it, and by what buyers
        were told; 0 when nothing was oversold."""
        held = sum(self.by_status.get(s, 0) for s in ("active", "committed", "consumed"))
        return max(0, held - max(units, self.on_hand), self.reserved - self.on_hand, told_confirmed - units)


async def _stock_state(pool: Any, sku: str) -> StockState:
    async with pool.acquire() as conn:
        return await stock_state(conn, sku)


async def stock_state(conn: Any, sku: str) -> StockState:
    """The SKU's stock summed over its rows (buckets), and its reservations by status."""
    item = await conn.fetchrow(
        "SELECT coalesce(sum(on_hand), 0) AS on_hand, coalesce(sum(reserved), 0) AS reserved "
        "FROM inventory_items WHERE sku = $1",
        sku,
    )
    rows = await conn.fetch(
        "SELECT status, sum(quantity) AS units FROM inventory_reservations WHERE sku = $1 GROUP BY status",
        sku,
    )
    return StockState(
        on_hand=int(item["on_hand"]),
        reserved=int(item["reserved"]),
        by_status={str(r["status"]): int(r["units"]) for r in rows},
    )


async def run(stack: Stack, progress: Progress) -> BenchResult:
    result = BenchResult(NAME, TITLE, quick=stack.quick, environment=environment(stack.stores))
    mode = "quick" if stack.quick else "full"
    units, limit = SIZES[mode]
    rw_units, rw_limit = RW_SIZES[mode]
    sku = f"FLASH-{stack.run_id}".upper()
    unavailable: str | None = None
    sale: Sale | None = None
    rw: Sale | None = None
    spread_sale: MeasuredSale | None = None
    switched: SwitchedSale | None = None
    stock: StockState | None = None
    cpu_seconds = orders_catch_up = 0.0
    sale_cpu: dict[str, float | None] = {}
    waits = WaitSamples()
    queue = ConnectionQueue(0, 0, 0.0)
    sale_core: CoreTime | None = None
    sale_reads: pg_reads.TableReads | None = None
    reads_before = pg_reads.TableReads(0, 0, 0, {})
    on_own_core: OwnCoreSale | None = None
    async with stack.http(BUYERS) as client:
        progress.phase("probing checkout with one real purchase")
        try:
            await probe_checkout(stack, client)
            progress.done("checkout works")
        except Unavailable as exc:
            unavailable = str(exc)
            progress.done(f"UNAVAILABLE: {unavailable}")
        if unavailable is None:
            try:
                await create_stocked_sku(stack, client, sku, units)
                # Settled, and before the sale's CPU is counted: the probe's and the stocking's
                # counts are not the sale's.
                reads_before = await pg_reads.read(stack.asyncpg_kwargs(), settle=True)
                progress.phase(f"gateway: {BUYERS} buyers, {units} units of {sku}")
                measured = await measured_sale(stack, client, sku, units, limit, progress)
                sale, sale_cpu, waits = measured.sale, measured.cpu_seconds, measured.waits
                queue, sale_core = measured.queue, measured.core
                cpu_seconds = stack.cpu.ours_total(sale_cpu) or 0.0
                progress.done(
                    f"{sale.confirmed} checked out, {fmt_rate(sale.rate)}; outcomes {sale.outcomes}"
                )
            except Unavailable as exc:
                unavailable = str(exc)
                progress.done(f"UNAVAILABLE: {unavailable}")
        if sale is not None:
            progress.phase("waiting for the orders read model to catch up")
            started = time.perf_counter()
            await stack.wait_projections(progress, timeout=120, names={"orders"})
            orders_catch_up = time.perf_counter() - started
            progress.done()
            # Once every projector has applied the sale: the rows read for it, theirs included.
            await stack.wait_projections(progress, timeout=120)
            sale_reads = (await pg_reads.read(stack.asyncpg_kwargs(), settle=True)).since(reads_before)
            rw_sku = f"FLASH-RW-{stack.run_id}".upper()
            await create_stocked_sku(stack, client, rw_sku, rw_units)
            progress.phase(
                f"read-your-writes: {BUYERS} buyers, {rw_units} units, checkout payload reads the order"
            )
            rw = await gateway_sale(
                stack, client, rw_sku, rw_units, rw_limit, progress, CHECKOUT_READ, "CONFIRMED"
            )
            progress.done(f"outcomes {rw.outcomes}")
            spread_sale = await bucketed_sale(stack, client, units, limit, progress)
            switched = await switched_sale(stack, client, units, limit, progress)
            on_own_core = await own_core_sale(stack, client, units, limit, progress)

    pool = await asyncpg.create_pool(min_size=1, max_size=1, **stack.asyncpg_kwargs())
    try:
        if sale is not None:
            stock = await _stock_state(pool, sku)
            sale.outcomes["oversold"] = stock.oversold(units, sale.confirmed)
    finally:
        await pool.close()
    # This process's SQLAlchemy pool is idle here: give its connections back for the baseline.
    await stack.engine.dispose()
    concurrency = min(BUYERS, await stack.available_connections())
    progress.phase(
        f"baseline: bare conditional reservation, {concurrency} asyncpg connections, {units} units"
    )
    base = await baseline_sale(stack, units, concurrency, progress)
    progress.done(f"{base.confirmed} reserved, {fmt_rate(base.rate)}")
    progress.phase(f"diagnostic: the same, with the stock split over {BUCKETS} bucket rows")
    bucketed = await baseline_sale(stack, units, concurrency, progress, BUCKETS)
    progress.done(f"{bucketed.confirmed} reserved, {fmt_rate(bucketed.rate)}")
    b = latency_stats(base.latencies)
    if sale is not None and latency_stats(sale.latencies)["p50"] - b["p50"] > b["p50"]:
        await _profile(stack, progress, result, PROFILE_UNITS[mode])

    _report(result, stack, units, limit, base, concurrency, sale, stock, rw, unavailable)
    bb = latency_stats(bucketed.latencies)
    result.row(
        f"diagnostic: bare reservation with stock in {BUCKETS} bucket rows",
        "",
        f"{fmt_rate(bucketed.rate, ' reservations/s')}, p50 {fmt_ms(bb['p50'])}, oversold "
        f"{bucketed.outcomes.get('oversold', 0)}",
        f"{fmt_ratio(ratio(bucketed.rate, base.rate))} of one row",
    )
    result.metrics["baseline_bucketed"] = {
        "buckets": BUCKETS,
        "rate": round(bucketed.rate, 1),
        "ms": bb,
        "oversold": bucketed.outcomes.get("oversold", 0),
        "reserved": bucketed.confirmed,
    }
    result.samples["baseline_bucketed_reservation_seconds"] = bucketed.latencies
    if bucketed.outcomes.get("oversold", 0):
        result.status = "failed"
    if sale is not None:
        cpu_ms = 1000 * cpu_seconds / max(1, sale.confirmed)
        ours = " + ".join(stack.cpu.ours())
        result.row(f"CPU per unit sold, ours ({ours}: cart + checkout + projectors)", f"{cpu_ms:.1f} ms")
        result.row("orders read model caught up after the sale", f"{orders_catch_up:.1f} s")
        result.metrics["gateway"]["cpu_ms_per_unit"] = round(cpu_ms, 2)
        result.metrics["gateway"]["orders_catch_up_seconds"] = round(orders_catch_up, 2)
        if sale_reads is not None:
            _report_reads(result, sale_reads, sale.confirmed)
        _report_limits(result, sale, sale_cpu, waits, queue, sale_core)
        if spread_sale is not None:
            report_bucketed(result, stack, spread_sale, result.metrics["gateway"]["rate"])
        if switched is not None:
            bucketed_rate = result.metrics.get("gateway_bucketed", {}).get("rate")
            report_switched(result, stack, switched, result.metrics["gateway"]["rate"], bucketed_rate)
        if on_own_core is not None:
            report_own_core(result, stack, on_own_core, result.metrics["gateway"]["rate"])
    return result


def _report_reads(result: BenchResult, reads: pg_reads.TableReads, units: int) -> None:
    per = reads.per(units)
    scanned = ", ".join(f"{table} {rows / max(1, units):.0f}" for table, rows in reads.most_scanned())
    result.row(
        "PostgreSQL rows read per unit sold: by sequential scans / through indexes; sequential scans",
        f"{per['seq_rows']:.0f} / {per['index_rows']:.0f}; {per['seq_scans']:.1f}",
        f"most scanned: {scanned}" if scanned else "",
    )
    result.row(
        "PostgreSQL transactions per unit sold: committed / rolled back; WAL flushes",
        f"{per['commits']:.1f} / {per['rollbacks']:.2f}; {per['wal_syncs']:.2f}",
        "every client's (the projectors' and the benchmark's own reads included)",
    )
    result.metrics["gateway"]["pg_reads_per_unit"] = {**per, "most_scanned": dict(reads.most_scanned())}


# A single event loop cannot use more than one core: near this, the gateway is the bottleneck.
CPU_BOUND_PERCENT = 85.0
# Runnable but not on a core for this share of the sale: the machine's other processes held them.
CORE_WAIT_PERCENT = 10.0


def _report_limits(
    result: BenchResult,
    sale: Sale,
    spent: dict[str, float | None],
    waits: WaitSamples,
    queue: ConnectionQueue,
    core: CoreTime | None,
) -> None:
    """What held the sale back: the gateway's CPU, or backends queued on the hot row's lock."""
    wall = sale.seconds
    percent = {k: None if v is None or wall <= 0 else round(100 * v / wall, 1) for k, v in spent.items()}
    per_unit = {
        k: None if v is None or not sale.confirmed else round(1000 * v / sale.confirmed, 2)
        for k, v in spent.items()
    }
    result.row(
        "during the sale, CPU in % of one core",
        ", ".join(f"{k} {v}%" for k, v in percent.items()),
    )
    result.row(
        "during the sale, CPU per unit sold by process",
        ", ".join(f"{k} {v} ms" for k, v in per_unit.items()),
    )
    result.row(
        "during the sale, PostgreSQL backends waiting on a lock: mean / max / share of samples",
        f"{waits.mean_lock_waiters:.1f} / {max(waits.lock_waiters, default=0)} / "
        f"{100 * waits.share_with_lock_waiter:.0f}%",
    )
    result.row(
        "during the sale, PostgreSQL backends queued on a row lock (the hot SKU) / on advisory locks "
        "(orders, carts) (mean)",
        f"{waits.mean_row_lock_waiters:.1f} / {waits.mean_advisory_waiters:.1f}",
    )
    result.row(
        "during the sale, PostgreSQL backends running / idle in transaction, waiting for our process (mean)",
        f"{waits.mean_running:.1f} / {waits.mean_idle_in_transaction:.1f}",
    )
    result.row(
        "during the sale, units of work that waited for one of the gateway's command connections",
        queue.describe(),
    )
    shares = waiting_share(core, wall)
    result.row(
        "during the sale, the gateway's threads on a core / runnable, waiting for one (share of the sale)",
        "n/a" if shares is None else f"{shares[0]:.0f}% / {shares[1]:.0f}%",
    )
    gateway = percent.get("gateway")
    worker = percent.get(WORKER_LABEL)
    # Every process on the machine (the kernel share is already inside its process's figure).
    machine = sum(v for k, v in percent.items() if v is not None and "in the kernel" not in k)
    cores = os.cpu_count() or 1
    # Mean number queued (Little's law): the time waited over the sale's length.
    queued_for_gateway = queue.seconds_waited / wall if wall > 0 else 0.0
    if shares is not None and shares[1] >= CORE_WAIT_PERCENT and sum(shares) >= CPU_BOUND_PERCENT:
        verdict = (
            f"the machine's cores: the gateway's loop always had work, on a core {shares[0]:.0f}% of the "
            f"sale and waiting for one {shares[1]:.0f}% while the other processes held them (together "
            f"{machine:.0f}% of {cores} cores)"
        )
    elif gateway is not None and gateway >= CPU_BOUND_PERCENT:
        verdict = f"gateway CPU: its event loop is at {gateway:.0f}% of the one core it can use"
    elif worker is not None and worker >= CPU_BOUND_PERCENT:
        verdict = f"projector worker CPU: its event loop is at {worker:.0f}% of the one core it can use"
    elif machine >= CPU_BOUND_PERCENT * cores:
        verdict = (
            f"the machine's CPU: the processes together at {machine:.0f}% of {cores} cores (gateway "
            f"{gateway}%); {waits.mean_row_lock_waiters:.1f} backends queued on the hot row, "
            f"{waits.mean_idle_in_transaction:.1f} waiting for our process"
        )
    elif waits.mean_row_lock_waiters >= max(1.0, queued_for_gateway):
        verdict = (
            f"lock waits on the hot SKU row: {waits.mean_row_lock_waiters:.1f} backends queued on average "
            f"(against {queued_for_gateway:.1f} units of work queued for a connection in the gateway), "
            f"gateway at {gateway}% of one core"
        )
    elif queued_for_gateway >= 1:
        verdict = (
            f"the gateway: {queued_for_gateway:.1f} units of work queued for its command connections on "
            f"average (against {waits.mean_row_lock_waiters:.1f} backends queued on the hot row), its "
            f"event loop at {gateway}% of one core with {waits.mean_idle_in_transaction:.1f} transactions "
            "waiting for it"
        )
    else:
        verdict = (
            f"neither the gateway's CPU ({gateway}% of one core) nor lock waits on the row "
            f"({waits.mean_row_lock_waiters:.1f} backends): the machine's other load "
            f"(load average {result.environment.get('loadavg')}) or round trips"
        )
    result.row("what limits throughput", verdict)
    result.notes.append(
        f"Limits: CPU from /proc (utime + stime) of each process over the {wall:.1f} s of the sale; "
        f"`pg_stat_activity` of the run's database and ungranted `pg_locks` sampled every "
        f"{waits.as_dict()['interval_seconds']} s ({waits.samples} samples). Mean backends by state / wait: "
        + ", ".join(f"{k} {v}" for k, v in waits.top())
        + "."
    )
    result.metrics["limits"] = {
        "cpu_seconds": spent,
        "cpu_percent_of_one_core": percent,
        "cpu_ms_per_unit": per_unit,
        "postgres_activity": waits.as_dict(),
        "gateway_on_core_and_waiting_percent": None if shares is None else [round(v, 1) for v in shares],
        "verdict": verdict,
    }


def _report(
    result: BenchResult,
    stack: Stack,
    units: int,
    limit: float,
    base: Sale,
    concurrency: int,
    sale: Sale | None,
    stock: StockState | None,
    rw: Sale | None,
    unavailable: str | None,
) -> None:
    b = latency_stats(base.latencies)
    base_oversold = base.outcomes.get("oversold", 0)
    result.metrics = {
        "buyers": BUYERS,
        "units": units,
        "baseline": {
            "reserved": base.confirmed,
            "rate": round(base.rate, 1),
            "ms": b,
            "seconds": round(base.seconds, 2),
            "oversold": base_oversold,
            "concurrency": concurrency,
        },
    }
    result.notes.append(
        f"Baseline: `{UPDATE_SQL}` then `{INSERT_SQL}`, one transaction per unit, {concurrency} asyncpg "
        "connections from the benchmark process, until no row updates."
    )
    if concurrency < BUYERS:
        result.notes.append(f"Baseline concurrency reduced to {concurrency}: PostgreSQL max_connections.")
    series: dict[str, list[float]] = {}
    throughput: dict[str, list[float]] = {}
    if sale is None or stock is None:
        result.status = "unavailable"
        result.headline = (
            f"checkout through the gateway is not available yet ({unavailable}); "
            f"baseline: {fmt_rate(base.rate, ' reservations/s')}, p50 {fmt_ms(b['p50'])}, oversold "
            f"{base_oversold}"
        )
        result.notes.insert(0, f"Gateway half not run: {unavailable}")
        result.row("confirmed checkouts per second", "n/a", fmt_rate(base.rate, " reservations/s"), "n/a")
        for q in ("p50", "p95", "p99"):
            result.row(f"latency {q}", "n/a", fmt_ms(b[q]), "n/a")
        result.row("oversold units (must be 0)", "n/a", str(base_oversold))
    else:
        g = latency_stats(sale.latencies)
        confirmed = stock.by_status.get("committed", 0) + stock.by_status.get("consumed", 0)
        span = sale.last_success - sale.started
        rate = confirmed / span if span > 0 else 0.0
        oversold = sale.outcomes.get("oversold", 0)
        result.status = "ok" if oversold == 0 and base_oversold == 0 else "failed"
        result.headline = (
            f"{fmt_rate(rate, ' confirmed checkouts/s')} ({fmt_ratio(ratio(rate, base.rate))} of the bare "
            f"reservation's {fmt_rate(base.rate)}); checkout p50 {fmt_ms(g['p50'])} p99 {fmt_ms(g['p99'])}; "
            f"oversold {oversold}"
        )
        result.row(
            "confirmed checkouts per second", fmt_rate(rate), fmt_rate(base.rate, " reservations/s"),
            fmt_ratio(ratio(rate, base.rate)),
        )  # fmt: skip
        for q in ("p50", "p95", "p99"):
            result.row(f"latency {q} (checkoutComplete / reservation tx)", fmt_ms(g[q]), fmt_ms(b[q]),
                       fmt_ratio(ratio(g[q], b[q])))  # fmt: skip
        result.row("oversold units (must be 0)", str(oversold), str(base_oversold))
        result.row("units confirmed / checked out / stock", f"{confirmed} / {sale.confirmed} / {units}",
                   f"{base.confirmed} / {units}")  # fmt: skip
        purchase = latency_stats(sale.purchase_latencies)
        cart = latency_stats(sale.cart_latencies)
        result.row(
            "purchase p50 / p99 (cartCreate + checkoutComplete)",
            f"{fmt_ms(purchase['p50'])} / {fmt_ms(purchase['p99'])}",
        )
        result.row("cartCreate p50 (the payload asks for cartId only)", fmt_ms(cart["p50"]))
        result.metrics["gateway"] = {
            "checked_out": sale.confirmed,
            "confirmed": confirmed,
            "reservations_by_status": stock.by_status,
            "rate": round(rate, 1),
            "ms": g,
            "purchase_ms": purchase,
            "cart_ms": cart,
            "seconds": round(sale.seconds, 2),
            "outcomes": sale.outcomes,
            "first_failures": sale.first_failures,
        }
        result.metrics["throughput_ratio"] = ratio(rate, base.rate)
        if sale.confirmed < units:
            result.notes.append(
                f"{sale.confirmed} of {units} units checked out within the {limit:.0f} s bound; "
                f"outcomes {sale.outcomes}."
            )
        if confirmed != sale.confirmed:
            result.notes.append(
                f"{sale.confirmed} checkouts succeeded but {confirmed} reservations are committed "
                f"(by status: {stock.by_status})."
            )
        result.notes.append(
            "Timed sale: the checkout payload selects `position` and `userErrors` only, so each "
            "buyer's pace is "
            "the checkout's; confirmations are counted from committed reservations in PostgreSQL afterwards."
        )
        cart_failed = sale.outcomes.get("CART_FAILED", 0)
        if cart_failed:
            result.row("cartCreate refused (no cart written)",
                       f"{cart_failed} of {len(sale.cart_latencies)}")  # fmt: skip
            result.notes.append(
                f"{cart_failed} cartCreate calls wrote no cart "
                f"({sale.first_failures.get('CART_FAILED', '')}); the buyer starts over."
            )
        series["checkoutComplete via GraphQL"] = sale.latencies
        throughput["units checked out (gateway)"] = sale.confirmed_at
        result.samples["gateway_checkout_seconds"] = sale.latencies
        result.samples["gateway_purchase_seconds"] = sale.purchase_latencies
    if rw is not None:
        r = latency_stats(rw.latencies)
        stale = sum(v for k, v in rw.outcomes.items() if k.startswith("COMMITTED_BUT_"))
        total = stale + rw.outcomes.get("CONFIRMED", 0)
        result.row(
            "with `order { status }` in the payload: confirmed p50 / p99",
            f"{fmt_ms(r.get('p50'))} / {fmt_ms(r.get('p99'))}",
        )
        result.row("with `order { status }`: committed but order not readable in time", f"{stale} of {total}")
        result.metrics["read_your_writes"] = {
            "ms": r,
            "outcomes": rw.outcomes,
            "stale": stale,
            "attempts": total,
        }
        if stale:
            result.notes.append(
                f"Read-your-writes under the sale: {stale} of {total} checkouts committed but their "
                "`order` could not "
                "be read back within READ_WAIT_SECONDS "
                f"({next((v for k, v in rw.first_failures.items() if k.startswith('COMMITTED_BUT_')), '')})."
            )
        series["checkoutComplete + order read-back"] = rw.latencies
        result.samples["gateway_checkout_with_order_seconds"] = rw.latencies
    series["bare reservation (asyncpg)"] = base.latencies
    throughput["bare reservation"] = base.confirmed_at
    result.samples["baseline_reservation_seconds"] = base.latencies
    result.plots.append(
        plot_latency(
            stack.results_dir / f"{NAME}_latency.png", f"flash sale, {BUYERS} buyers, one hot SKU", series
        )
    )
    result.plots.append(
        plot_throughput(
            stack.results_dir / f"{NAME}_throughput.png", "units sold per second", throughput, unit="units"
        )
    )


async def _profile(stack: Stack, progress: Progress, result: BenchResult, units: int) -> None:
    sku = f"FLASH-PROF-{stack.run_id}".upper()
    async with stack.http(BUYERS) as client:
        await create_stocked_sku(stack, client, sku, units)
        progress.phase(
            f"profiling the gateway over a {units}-unit sale (gateway overhead > reservation time)"
        )
        async with stack.profile(NAME) as profiles:
            limit = PROFILE_LIMIT_SECONDS["quick" if stack.quick else "full"]
            await gateway_sale(stack, client, sku, units, limit, progress)
        result.profiles += profiles
        progress.done()


async def bucketed_sale(
    stack: Stack, client: Any, units: int, limit: float, progress: Progress
) -> MeasuredSale:
    """The same sale on a SKU whose stock is spread over buckets first (``inventorySetBuckets``)."""
    sku = f"FLASH-B{SALE_BUCKETS}-{stack.run_id}".upper()
    await create_stocked_sku(stack, client, sku, units)
    spread = await gql(
        client,
        SET_BUCKETS,
        {"sku": sku, "buckets": SALE_BUCKETS, "key": f"buckets-{sku}"},
        token=stack.admin_token(),
    )
    payload = spread.field("inventorySetBuckets")
    if not payload or payload.get("userErrors") or spread.error_codes:
        raise Unavailable(f"inventorySetBuckets: {spread.describe()}")
    progress.phase(f"gateway, stock in {SALE_BUCKETS} buckets: {BUYERS} buyers, {units} units of {sku}")
    run = await measured_sale(stack, client, sku, units, limit, progress)
    progress.done(f"{run.confirmed} confirmed, outcomes {run.sale.outcomes}")
    return run


async def measured_sale(
    stack: Stack, client: Any, sku: str, units: int, limit: float, progress: Progress
) -> MeasuredSale:
    """``gateway_sale`` of a stocked SKU, with our CPU, PostgreSQL's waits and the stock after it."""
    cpu_before = stack.cpu.read()
    core_before = CoreTime.of(stack.gateway.pid)
    queue_before = await stack.control("connections", method="GET")
    async with WaitSampler(stack.asyncpg_kwargs()) as waits:
        sale = await gateway_sale(stack, client, sku, units, limit, progress)
    spent = stack.cpu.spent(cpu_before, stack.cpu.read())
    core = spent_since(stack.gateway.pid, core_before)
    queue = ConnectionQueue.between(queue_before, await stack.control("connections", method="GET"))
    conn = await asyncpg.connect(**stack.asyncpg_kwargs())
    try:
        stock = await stock_state(conn, sku)
    finally:
        await conn.close()
    confirmed = stock.by_status.get("committed", 0) + stock.by_status.get("consumed", 0)
    return MeasuredSale(
        sale, spent, waits, confirmed, stock.oversold(units, sale.confirmed), stock.by_status, queue, core
    )
