"""Search: ``products`` with a text query, two filters (brands, price range) and facets over
the demo catalog, through the gateway, against the same search-engine request sent directly.

The direct request is the body the gateway's own query builder makes
(``queries.product_search.build_search``), POSTed to ``<engine>/<alias>/_search`` with the
same kind of pooled client (``benchmarks/load_client.py``) and decoded the same way. Rounds
alternate (gateway, direct, gateway, ...) so a noisy neighbour hurts both sides alike. Each
response is checked: the gateway's ``totalCount`` must equal the engine's hit count for the
same search.

The gateway keeps search answers per version of the search model (``gateway/edge/search_cache.py``),
so a search it has answered before costs it no engine call. The concurrent rounds measure the
whole path, the engine call included: every request lists its brands in an order no earlier
request used (the same search to the engine, a new one to the cache). The small page is
measured both ways: filters in rotation (answered from kept answers after their first request)
and every request new.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from math import factorial
from typing import Any, TypeVar

from benchmarks.harness import Stack, gql, http_client, run_workers
from benchmarks.progress import Progress
from benchmarks.report import (
    BenchResult,
    environment,
    fmt_ms,
    fmt_rate,
    fmt_ratio,
    latency_stats,
    plot_latency,
    ratio,
)
from gateway.bootstrap.seed import BRANDS
from queries.product_search import SearchRequest, build_search

NAME = "search"
TITLE = "Search"
NEEDS_CATALOG = True
CONCURRENCY = 8
SIZES = {"full": (3, 300, 300), "quick": (2, 30, 40)}  # rounds, requests per side per round, profiled
WARMUP = 20
PAGE = 20
# The small read: a facet-filtered listing (a few brands, no text), a page of 10, one
# client at a time, alternating sides request by request. Six brands match well over a
# page even in the quick run's 300-product catalog.
SMALL_PAGE = 10
SMALL_SIZES = {"full": 200, "quick": 40}  # requests per side
SMALL_BRANDS = 6
SMALL_FILTERS = 6

QUERY = """
query Search($query: String, $filter: ProductFilter, $first: Int) {
  products(query: $query, filter: $filter, first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    facets {
      brands { value count }
      categories { value count }
      prices { from to count }
    }
    edges {
      cursor
      node {
        id handle title brand categories
        priceRange { min { amount currencyCode } max { amount } }
        variants { sku title price { amount } }
      }
    }
  }
}
"""

# Words from the demo catalog's titles and descriptions; brand sets and price ranges vary.
WORDS = ("jacket", "classic", "trail", "lightweight", "tee", "boot", "rugged", "summit")
BRANDS_PER_SEARCH = 12


def searches() -> list[tuple[str, tuple[str, ...], Decimal, Decimal]]:
    cases = []
    for i, word in enumerate(WORDS):
        brands = tuple(BRANDS[(i * 5 + k) % len(BRANDS)] for k in range(BRANDS_PER_SEARCH))
        low, high = Decimal(10 + 5 * i), Decimal(150 + 50 * i)
        cases.append((word, brands, low, high))
    return cases


T = TypeVar("T")
# Request numbers of the warm-up: far from the measured ones, so nothing measured is kept by it.
WARMUP_START = 1_000_000


def nth_order(items: Sequence[T], n: int) -> tuple[T, ...]:
    """The ``n``-th ordering of ``items`` (lexicographic by position; ``n`` modulo their count)."""
    rest, chosen = list(items), []
    n %= factorial(len(rest))
    while rest:
        index, n = divmod(n, factorial(len(rest) - 1))
        chosen.append(rest.pop(index))
    return tuple(chosen)


def numbered(
    cases: Sequence[tuple[str, tuple[str, ...], Decimal, Decimal]], n: int
) -> tuple[str, tuple[str, ...], Decimal, Decimal]:
    """Request ``n``: its case (in rotation) with the brands in the case's ``n // len(cases)``-th order."""
    word, brands, low, high = cases[n % len(cases)]
    return word, nth_order(brands, n // len(cases)), low, high


def small_searches() -> list[tuple[str, ...]]:
    """Brand facet filters that each match more than a page."""
    return [
        tuple(BRANDS[(i * SMALL_BRANDS + k) % len(BRANDS)] for k in range(SMALL_BRANDS))
        for i in range(SMALL_FILTERS)
    ]


def small_variables(brands: tuple[str, ...]) -> dict[str, Any]:
    return {"filter": {"brands": list(brands)}, "first": SMALL_PAGE}


def small_body(brands: tuple[str, ...]) -> dict[str, Any]:
    return build_search(SearchRequest(brands=brands, first=SMALL_PAGE)).body


def gateway_variables(case: tuple[str, tuple[str, ...], Decimal, Decimal]) -> dict[str, Any]:
    word, brands, low, high = case
    return {
        "query": word,
        "filter": {"brands": list(brands), "minPrice": str(low), "maxPrice": str(high)},
        "first": PAGE,
    }


def engine_body(case: tuple[str, tuple[str, ...], Decimal, Decimal]) -> dict[str, Any]:
    word, brands, low, high = case
    request = SearchRequest(query=word, brands=brands, min_price=low, max_price=high, first=PAGE)
    return build_search(request).body


class Side:
    def __init__(self, label: str) -> None:
        self.label = label
        self.latencies: list[float] = []
        self.busy_seconds = 0.0
        self.totals: dict[int, int] = {}


async def _small_page(
    stack: Stack, client: Any, engine: Any, count: int, *, new_each_time: bool
) -> tuple[Side, Side, float]:
    """(gateway side, direct side, gateway CPU seconds of the gateway requests). In rotation, the
    filters repeat; ``new_each_time``, each request lists its brands in an order not used before."""
    cases = small_searches()
    url = f"/{stack.search_alias}/_search"
    gateway, direct = Side("gateway"), Side("direct")
    cpu = 0.0
    for i in range(count + WARMUP):
        case = i % len(cases)
        brands = nth_order(cases[case], 1 + i // len(cases)) if new_each_time else cases[case]
        before = stack.cpu.read_one("gateway")
        response = await gql(client, QUERY, small_variables(brands))
        after = stack.cpu.read_one("gateway")
        page = response.field("products")
        if page is None:
            raise RuntimeError(f"small-page search failed: {response.describe()}")
        body = small_body(brands)  # built outside the engine's timed window, as in the rounds
        started = time.perf_counter()
        answer = await engine.post(url, json=body, headers={"content-type": "application/json"})
        decoded = answer.json()
        seconds = time.perf_counter() - started
        if answer.status_code != 200:
            raise RuntimeError(f"direct search failed: HTTP {answer.status_code} {str(decoded)[:300]}")
        if i < WARMUP:
            continue
        if before is not None and after is not None:
            cpu += after - before
        gateway.latencies.append(response.seconds)
        gateway.totals.setdefault(case, int(page["totalCount"]))
        direct.latencies.append(seconds)
        direct.totals.setdefault(case, int(decoded["hits"]["total"]["value"]))
        if len(page["edges"]) != SMALL_PAGE:
            raise RuntimeError(
                f"small-page search returned {len(page['edges'])} products of {page['totalCount']}"
            )
    return gateway, direct, cpu


SMALL_KINDS = {
    "small_page": "filters in rotation, kept answers",
    "small_page_new": "every request new",
}


def _report_small(result: BenchResult, key: str, gateway: Side, direct: Side, cpu: float) -> list[str]:
    """Rows for one small-page phase; returns the filters whose counts differ between the sides."""
    g, d = latency_stats(gateway.latencies), latency_stats(direct.latencies)
    label = f"small page (facet filters, first {SMALL_PAGE}, 1 client, {SMALL_KINDS[key]})"
    result.row(
        f"{label}: latency p50", fmt_ms(g["p50"]), fmt_ms(d["p50"]), fmt_ratio(ratio(g["p50"], d["p50"]))
    )
    result.row(
        f"{label}: latency p99", fmt_ms(g["p99"]), fmt_ms(d["p99"]), fmt_ratio(ratio(g["p99"], d["p99"]))
    )
    per_request = 1000 * cpu / max(1, len(gateway.latencies))
    result.row(f"{label}: gateway CPU per search", f"{per_request:.1f} ms")
    cases = small_searches()
    result.metrics[key] = {
        "gateway_ms": g,
        "direct_ms": d,
        "overhead_ratio_p50": ratio(g["p50"], d["p50"]),
        "gateway_cpu_ms_per_search": round(per_request, 2),
        "page": SMALL_PAGE,
        "filters": [list(brands) for brands in cases],
        "total_counts": {", ".join(cases[i]): n for i, n in gateway.totals.items()},
    }
    result.samples[f"{key}_gateway_seconds"] = gateway.latencies
    result.samples[f"{key}_direct_seconds"] = direct.latencies
    return [
        f"{key} {', '.join(cases[i])}"
        for i, n in gateway.totals.items()
        if direct.totals.get(i) not in (None, n)
    ]


def _small_note(totals: dict[int, int]) -> str:
    return (
        f"Small page: `products(filter: {{brands: [{SMALL_BRANDS} brands]}}, first: {SMALL_PAGE})` "
        f"({SMALL_FILTERS} brand sets, {min(totals.values(), default=0)} to "
        f"{max(totals.values(), default=0)} "
        "matches) with the same selection (facets included), one request at a time, gateway and engine "
        "alternating request by request; gateway CPU from /proc around each gateway request. Measured "
        "twice: with the sets in rotation (after its first request a set is answered from the answers "
        "the gateway keeps for the search model's version), and with every request listing its brands "
        "in a new order (the same search to the engine, a new one to the gateway's kept answers)."
    )


async def _round(
    count: int,
    side: Side,
    call: Any,
    progress: Progress,
    cases: list[Any],
    done_before: int,
    total: int,
    *,
    start: int,
) -> None:
    """Requests ``start`` to ``start + count - 1`` (see ``numbered``), ``CONCURRENCY`` at a time."""
    next_index = 0

    async def worker(_: int) -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            case_index = (start + i) % len(cases)
            seconds, hits = await call(start + i)
            side.latencies.append(seconds)
            side.totals.setdefault(case_index, hits)
            progress.update(done_before + len(side.latencies), total, side.label)

    started = time.perf_counter()
    await run_workers(CONCURRENCY, worker)
    side.busy_seconds += time.perf_counter() - started


async def run(stack: Stack, progress: Progress) -> BenchResult:
    result = BenchResult(NAME, TITLE, quick=stack.quick, environment=environment(stack.stores))
    rounds, per_round, profiled = SIZES["quick" if stack.quick else "full"]
    cases = searches()
    url = f"/{stack.search_alias}/_search"
    gateway, direct = Side("gateway"), Side("direct")

    async with stack.http(CONCURRENCY) as client, http_client(stack.search_url, CONCURRENCY) as engine:

        async def via_gateway(n: int) -> tuple[float, int]:
            response = await gql(client, QUERY, gateway_variables(numbered(cases, n)))
            page = response.field("products")
            if page is None:
                raise RuntimeError(f"products search failed: {response.describe()}")
            return response.seconds, int(page["totalCount"])

        async def via_engine(n: int) -> tuple[float, int]:
            body = engine_body(numbered(cases, n))
            started = time.perf_counter()
            response = await engine.post(url, json=body, headers={"content-type": "application/json"})
            decoded = response.json()
            seconds = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"direct search failed: HTTP {response.status_code} {str(decoded)[:300]}")
            return seconds, int(decoded["hits"]["total"]["value"])

        progress.phase("warming up both paths")
        warm_g, warm_d = Side("warm"), Side("warm")
        await _round(WARMUP, warm_g, via_gateway, progress, cases, 0, 2 * WARMUP, start=WARMUP_START)
        await _round(WARMUP, warm_d, via_engine, progress, cases, WARMUP, 2 * WARMUP, start=WARMUP_START)
        progress.done()

        total = 2 * rounds * per_round
        progress.phase(
            f"{rounds} alternating rounds of {per_round} searches per side, {CONCURRENCY} at a time"
        )
        cpu_before = await stack.gateway_cpu()
        cpu_gateway = 0.0
        for r in range(rounds):
            cpu_start = await stack.gateway_cpu()
            done = len(gateway.latencies) + len(direct.latencies)
            await _round(per_round, gateway, via_gateway, progress, cases, done, total, start=r * per_round)
            cpu_gateway += await stack.gateway_cpu() - cpu_start
            done = len(gateway.latencies) + len(direct.latencies)
            await _round(per_round, direct, via_engine, progress, cases, done, total, start=r * per_round)
        cpu_total = await stack.gateway_cpu() - cpu_before
        progress.done()

        g, d = latency_stats(gateway.latencies), latency_stats(direct.latencies)
        overhead_ms = g["p50"] - d["p50"]
        if overhead_ms > d["p50"]:
            progress.phase(
                f"profiling the gateway over {profiled} more searches (gateway overhead > engine time)"
            )
            async with stack.profile(NAME) as profiles:
                profiled_start = 2 * WARMUP_START
                await _round(
                    profiled,
                    Side("profiled"),
                    via_gateway,
                    progress,
                    cases,
                    0,
                    profiled,
                    start=profiled_start,
                )
            result.profiles += profiles
            progress.done()

        small: dict[str, tuple[Side, Side, float]] = {}
        for key, kind in SMALL_KINDS.items():
            progress.phase(f"small page: facet-filtered, first {SMALL_PAGE}, one client at a time, {kind}")
            small[key] = await _small_page(
                stack,
                client,
                engine,
                SMALL_SIZES["quick" if stack.quick else "full"],
                new_each_time=key == "small_page_new",
            )
            progress.done(
                f"gateway p50 {fmt_ms(latency_stats(small[key][0].latencies)['p50'])}, "
                f"engine {fmt_ms(latency_stats(small[key][1].latencies)['p50'])}"
            )

    mismatched = [
        cases[i][0] for i, hits in gateway.totals.items() if direct.totals.get(i) not in (None, hits)
    ]
    g_rate = len(gateway.latencies) / gateway.busy_seconds
    d_rate = len(direct.latencies) / direct.busy_seconds
    result.status = "failed" if mismatched else "ok"
    kept, new = (
        [fmt_ms(latency_stats(side.latencies)["p50"]) for side in small[key][:2]] for key in SMALL_KINDS
    )
    result.headline = (
        f"gateway p50 {fmt_ms(g['p50'])} vs engine {fmt_ms(d['p50'])} "
        f"(overhead {fmt_ratio(ratio(g['p50'], d['p50']))} at p50, "
        f"{fmt_ratio(ratio(g['p99'], d['p99']))} at p99); small page p50 {kept[0]} repeated, "
        f"{new[0]} new vs engine {new[1]}"
    )
    result.row("latency p50", fmt_ms(g["p50"]), fmt_ms(d["p50"]), fmt_ratio(ratio(g["p50"], d["p50"])))
    result.row("latency p95", fmt_ms(g["p95"]), fmt_ms(d["p95"]), fmt_ratio(ratio(g["p95"], d["p95"])))
    result.row("latency p99", fmt_ms(g["p99"]), fmt_ms(d["p99"]), fmt_ratio(ratio(g["p99"], d["p99"])))
    result.row(
        f"throughput at {CONCURRENCY} concurrent",
        fmt_rate(g_rate, " req/s"),
        fmt_rate(d_rate, " req/s"),
        fmt_ratio(ratio(g_rate, d_rate)),
    )
    per_request_cpu = 1000 * cpu_gateway / max(1, len(gateway.latencies))
    result.row("gateway CPU per search", f"{per_request_cpu:.1f} ms")
    result.metrics = {
        "gateway_ms": g,
        "direct_ms": d,
        "overhead_ratio_p50": ratio(g["p50"], d["p50"]),
        "overhead_ratio_p99": ratio(g["p99"], d["p99"]),
        "gateway_rps": round(g_rate, 1),
        "direct_rps": round(d_rate, 1),
        "gateway_cpu_ms_per_search": round(per_request_cpu, 2),
        "gateway_cpu_seconds_whole_phase": round(cpu_total, 2),
        "concurrency": CONCURRENCY,
        "rounds": rounds,
        "requests_per_side": len(gateway.latencies),
        "searches": [
            {"query": c[0], "brands": list(c[1]), "min": str(c[2]), "max": str(c[3])} for c in cases
        ],
        "total_counts": {cases[i][0]: hits for i, hits in gateway.totals.items()},
        "catalog_products": len(stack.catalog),
    }
    result.notes.append(
        f"{len(stack.catalog)} demo products. Each search: text query, a brand filter "
        f"({BRANDS_PER_SEARCH} of {len(BRANDS)} brands) and a price "
        f"range, page of {PAGE}, brand/category/price facets; 8 different searches in rotation, each "
        "request listing its brands in a new order (none answered from the gateway's kept answers). The "
        "gateway query selects the products' variants and facets but not `freshness` (not part of the engine "
        "request; it costs one PostgreSQL query more)."
    )
    hits = sorted(gateway.totals.values())
    if hits:
        result.notes.append(
            f"Matching products per search: {hits[0]} to {hits[-1]} (median {hits[len(hits) // 2]})."
        )
    for key, phase in small.items():
        mismatched += _report_small(result, key, *phase)
    result.notes.append(_small_note(small["small_page"][0].totals))
    if mismatched:
        result.status = "failed"
        result.notes.append(f"Result counts differ between gateway and engine for: {', '.join(mismatched)}.")
    result.plots.append(
        plot_latency(
            stack.results_dir / f"{NAME}_latency.png",
            f"products search: gateway vs direct engine request ({CONCURRENCY} concurrent)",
            {"gateway (GraphQL over HTTP)": gateway.latencies, "search engine direct": direct.latencies},
        )
    )
    result.samples.update(gateway_seconds=gateway.latencies, direct_seconds=direct.latencies)
    return result
