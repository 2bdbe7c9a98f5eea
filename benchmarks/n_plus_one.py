"""N+1 guard: a cart with 50 lines, each with its variant, product and stock hint, must
resolve with a bounded number of store calls, the same for 1, 10 or 50 lines.

Counted in the gateway process at each store client's boundary (PostgreSQL statements,
search-engine requests, MongoDB operations, Redis commands), for one GraphQL request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import Stack, gql
from benchmarks.progress import Progress
from benchmarks.report import BenchResult, environment, latency_stats, plot_stacked_bars

NAME = "n_plus_one"
TITLE = "N+1 guard"
NEEDS_CATALOG = True
LINE_COUNTS = (1, 10, 50)
STORES = ("postgres", "search", "mongodb", "redis")
# Store calls one cart read may make whatever its size: the cart document, the variants
# (one batched search), the stock hints (one batched query), freshness, the cost budget.
BOUND = 10
REPEATS = 5
PROFILE_READS = 30

CREATE = """
mutation($input: CartCreateInput) {
  cartCreate(input: $input) { cart { id version } position userErrors { code message field } }
}
"""
READ = """
query($id: ID!, $p: Position) {
  cart(id: $id, consistentWith: $p) {
    id version totalQuantity
    subtotal { amount currencyCode }
    freshness { lagEvents }
    lines {
      id sku quantity
      unitPrice { amount currencyCode }
      lineTotal { amount }
      variant {
        id sku title
        price { amount currencyCode }
        availability { inStock available }
        product { id handle title brand }
      }
    }
  }
}
"""


async def run(stack: Stack, progress: Progress) -> BenchResult:
    result = BenchResult(NAME, TITLE, quick=stack.quick, environment=environment(stack.stores))
    skus = stack.skus(max(LINE_COUNTS))
    counted: dict[int, Counted] = {}
    consistent: dict[int, Counted] = {}
    latencies: dict[int, list[float]] = {}
    progress.phase("creating carts with 1, 10 and 50 lines")
    carts: dict[int, tuple[str, str]] = {}
    async with stack.http(2) as client:
        for n in LINE_COUNTS:
            lines = [{"sku": sku, "quantity": 1 + i % 3} for i, sku in enumerate(skus[:n])]
            for _attempt in range(3):  # a stale read-back leaves no cart id: create again
                created = await gql(client, CREATE, {"input": {"lines": lines}})
                payload = created.field("cartCreate")
                if payload and not payload["userErrors"] and payload["cart"]:
                    break
            else:
                raise RuntimeError(f"cartCreate with {n} lines failed: {created.describe()}")
            carts[n] = (payload["cart"]["id"], payload["position"])
        progress.done()
        progress.phase("counting store calls per cart read")
        await stack.control("calls/install")
        try:
            for n, (cart_id, position) in carts.items():
                # Warm (and check) the read once, then count one plain read and one
                # read-your-writes read of each cart.
                warm = await gql(client, READ, {"id": cart_id, "p": position})
                cart = warm.field("cart")
                if (
                    cart is None
                    or len(cart["lines"]) != n
                    or any(x["variant"] is None for x in cart["lines"])
                ):
                    raise RuntimeError(f"reading the {n}-line cart failed: {warm.describe()}")
                counted[n] = await _counted(stack, client, {"id": cart_id}, f"plain-{n}")
                consistent[n] = await _counted(stack, client, {"id": cart_id, "p": position}, f"rw-{n}")
                progress.note(f"{n:>2} lines: {counted[n].total} store calls ({_describe(counted[n].calls)})")
        finally:
            await stack.control("calls/uninstall")
        for n, (cart_id, _) in carts.items():
            latencies[n] = [(await gql(client, READ, {"id": cart_id})).seconds for _ in range(REPEATS)]
        progress.done()

        biggest = max(LINE_COUNTS)
        big = counted[biggest]
        p50 = latency_stats(latencies[biggest])["p50"] / 1000
        if p50 - big.store_seconds > big.store_seconds:
            progress.phase(f"profiling {PROFILE_READS} reads of the {biggest}-line cart")
            async with stack.profile(f"{NAME}_{biggest}_lines") as profiles:
                for _ in range(PROFILE_READS):
                    await gql(client, READ, {"id": carts[biggest][0]})
            result.profiles += profiles
            progress.done()

    totals = {n: c.total for n, c in counted.items()}
    smallest = min(LINE_COUNTS)
    # One Redis call of slack: the cost budget refunds what a small cart did not use.
    bounded = totals[biggest] <= totals[smallest] + 1 and max(totals.values()) <= BOUND
    print(
        f"N+1 guard: a {biggest}-line cart with variants resolves with {totals[biggest]} store calls "
        f"({_describe(big.calls)}); by cart size: {', '.join(f'{n} lines {t}' for n, t in totals.items())}"
    )
    result.status = "ok" if bounded else "failed"
    result.headline = (
        f"{biggest}-line cart with variants: {totals[biggest]} store calls ({_describe(big.calls)}), "
        + ("bounded: no more than for a 1-line cart" if bounded else "NOT bounded: grows with the lines")
    )
    for n in LINE_COUNTS:
        stats = latency_stats(latencies[n])
        c = counted[n]
        result.row(
            f"{n}-line cart: store calls (plain / with consistentWith)", f"{c.total} / {consistent[n].total}"
        )
        result.row(
            f"{n}-line cart: read latency p50 (time in store calls)",
            f"{stats.get('p50', 0):.1f} ms ({1000 * c.store_seconds:.1f} ms)",
        )
    result.metrics = {
        "store_calls": {str(n): counted[n].calls for n in LINE_COUNTS},
        "store_calls_consistent_with": {str(n): consistent[n].calls for n in LINE_COUNTS},
        "store_seconds": {str(n): counted[n].store_seconds for n in LINE_COUNTS},
        "server_request_seconds": {str(n): counted[n].request_seconds for n in LINE_COUNTS},
        "bound": BOUND,
        "bounded": bounded,
        "read_latency_ms": {str(n): latency_stats(latencies[n]) for n in LINE_COUNTS},
    }
    result.notes.append(
        "Counted inside the gateway process at the client boundary of each store (SQLAlchemy "
        "cursor executions, search transport requests, MongoDB collection operations, Redis "
        "commands), only for the counted request, with the wall time spent in them. PostgreSQL: "
        "freshness and the batched stock hints; search: one batched variant lookup (products are "
        "primed from it); MongoDB: the cart document; Redis: the cost budget (a small cart gets "
        "one more call, the refund of unused cost). With `consistentWith` the read-your-writes "
        "wait adds its own lookups."
    )
    result.plots.append(
        plot_stacked_bars(
            stack.results_dir / f"{NAME}_store_calls.png",
            "Store calls for one cart read, by cart size",
            [f"{n} lines" for n in LINE_COUNTS],
            {store: [counted[n].calls.get(store, 0) for n in LINE_COUNTS] for store in STORES},
            "store calls per request",
        )
    )
    result.samples = {f"read_seconds_{n}_lines": latencies[n] for n in LINE_COUNTS}
    return result


@dataclass
class Counted:
    calls: dict[str, int]
    store_seconds: float
    request_seconds: float

    @property
    def total(self) -> int:
        return sum(self.calls.values())


async def _counted(stack: Stack, client: Any, variables: dict[str, Any], key: str) -> Counted:
    key = f"{key}-{time.perf_counter_ns()}"
    response = await gql(client, READ, variables, headers={"x-bench-count": key})
    if response.field("cart") is None:
        raise RuntimeError(f"counted read failed: {response.describe()}")
    found = await stack.control(f"calls/result?key={key}", method="GET")
    calls = found.get("calls", {})
    return Counted(
        calls={store: int(calls.get(store, 0)) for store in STORES},
        store_seconds=sum(found.get("seconds", {}).values()),
        request_seconds=float(found.get("request_seconds", 0.0)),
    )


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{store} {counts.get(store, 0)}" for store in STORES)
