"""HTTP caching: a storefront's persisted catalog queries over GET with ``If-None-Match``.

Twenty persisted catalog queries (APQ, as Apollo's link sends them over GET), three phases
through one gateway process:

1. revalidations only, nothing written: every answer a 304; gateway CPU per 304;
2. the same queries without validators: every answer executed; gateway CPU per full answer;
3. the storefront mix: clients revalidate their copy of each page in turn while product
   updates arrive at ``UPDATES_PER_SECOND``; the share of 304s, and how long any client held a
   page older than a write it could show (from the write's commit until the client held a
   copy whose ``freshness.position`` covers it), against max-age plus the read-model lag.

Every client has its own source address (its own anonymous budget). CPU is read from /proc
of the gateway process around phases 1 and 2 (which write nothing, so projectors are idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from benchmarks.harness import BENCH_METADATA, Stack, buyer_address, run_workers
from benchmarks.load_client import LoadClient
from benchmarks.progress import Progress
from benchmarks.report import BenchResult, environment, percentile

NAME = "cache"
TITLE = "HTTP caching (conditional GETs)"
NEEDS_CATALOG = True
CLIENTS = 8
UPDATES_PER_SECOND = 5.0
SIZES = {"full": (2000, 600, 30.0), "quick": (300, 100, 8.0)}  # 304s, full answers, mix seconds
CPU_GOAL_MS = 0.3
ACCEPT = "application/graphql-response+json"

DOCUMENTS = (
    """query Listing($query: String, $first: Int) {
  products(query: $query, first: $first) {
    totalCount
    edges { node { handle title priceRange { min { amount currencyCode } } } }
    freshness { position }
  }
}""",
    """query Sorted($sort: ProductSort, $first: Int) {
  products(sort: $sort, first: $first) {
    edges { node { handle title brand } }
    freshness { position }
  }
}""",
)
WORDS = ("jacket", "classic", "trail", "lightweight", "tee", "boot", "rugged", "summit", "wool", "pack")
SORTS = ("NEWEST", "PRICE_ASC", "PRICE_DESC", "TITLE_ASC", "RELEVANCE", "NEWEST", "PRICE_ASC",
         "TITLE_ASC", "PRICE_DESC", "RELEVANCE")  # fmt: skip


def _queries() -> list[tuple[str, dict[str, Any]]]:
    listing = [(DOCUMENTS[0], {"query": word, "first": 10}) for word in WORDS]
    sorted_ = [(DOCUMENTS[1], {"sort": sort, "first": 5 + i}) for i, sort in enumerate(SORTS)]
    return listing + sorted_


def _url(query: str, variables: dict[str, Any], *, with_query: bool = False) -> str:
    digest = hashlib.sha256(query.encode()).hexdigest()
    params = {
        "extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}}),
        "variables": json.dumps(variables, separators=(",", ":")),
    }
    if with_query:
        params["query"] = query
    return str(httpx.URL("/graphql", params=params))


@dataclass
class Copy:
    etag: str
    position: int
    max_age: float


@dataclass
class Client:
    http: LoadClient
    copies: dict[int, Copy] = field(default_factory=dict)
    # Every use of a page: (sent at, answered at, position of the copy the client then holds)
    uses: list[tuple[float, float, int]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def fetch(self, index: int, query: str, variables: dict[str, Any], *, conditional: bool) -> int:
        headers = {"accept": ACCEPT}
        copy = self.copies.get(index)
        if conditional and copy is not None:
            headers["if-none-match"] = copy.etag
        sent = time.perf_counter()
        response = await self.http.get(_url(query, variables), headers=headers)
        if response.status_code == 304 and copy is not None:
            self.uses.append((sent, time.perf_counter(), copy.position))
            self.statuses.append(304)
            return 304
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
        body = response.json()
        if "errors" in body:
            raise RuntimeError(f"query failed: {body['errors'][0]}")
        position = int(body["data"]["products"]["freshness"]["position"])
        etag = response.headers.get("etag")
        if etag is None:
            raise RuntimeError(f"no ETag on a public catalog answer ({response.headers})")
        max_age = float(response.headers["cache-control"].split("max-age=")[1].split(",")[0])
        self.copies[index] = Copy(etag, position, max_age)
        self.uses.append((sent, time.perf_counter(), position))
        self.statuses.append(200)
        return 200


async def _register(client: LoadClient, queries: list[tuple[str, dict[str, Any]]]) -> None:
    for query, variables in queries:
        response = await client.get(_url(query, variables, with_query=True), headers={"accept": ACCEPT})
        if response.status_code != 200 or "errors" in response.json():
            raise RuntimeError(f"registration failed: HTTP {response.status_code} {response.text[:300]}")


async def _phase(
    stack: Stack,
    clients: list[Client],
    queries: list[tuple[str, dict[str, Any]]],
    total: int,
    conditional: bool,
) -> tuple[float, list[int]]:
    """``total`` requests spread over the clients; (gateway CPU seconds, statuses)."""
    statuses: list[int] = []
    before = stack.cpu.read_one("gateway")

    async def worker(i: int) -> None:
        client = clients[i]
        for n in range(i, total, len(clients)):
            index = n % len(queries)
            statuses.append(await client.fetch(index, *queries[index], conditional=conditional))

    await run_workers(len(clients), worker)
    after = stack.cpu.read_one("gateway")
    return (after - before) if before is not None and after is not None else float("nan"), statuses


async def _typenames(stack: Stack, clients: list[Client], total: int) -> float:
    before = stack.cpu.read_one("gateway")

    async def worker(i: int) -> None:
        for _ in range(i, total, len(clients)):
            response = await clients[i].http.post(
                "/graphql", json={"query": "{ __typename }"}, headers={"accept": ACCEPT}
            )
            response.raise_for_status()

    await run_workers(len(clients), worker)
    after = stack.cpu.read_one("gateway")
    return (after - before) if before is not None and after is not None else float("nan")


async def _updates(stack: Stack, stop: asyncio.Event, writes: list[tuple[float, int]]) -> None:
    """Product updates at a steady rate: (commit time, ledger position) of each."""
    catalog = stack.catalog
    n = 0
    started = time.perf_counter()
    while not stop.is_set():
        product = catalog[(n * 7) % len(catalog)]
        command = replace(product, title=f"{product.title} ({n})")
        result = await stack.bus.dispatch(command, BENCH_METADATA)
        if result.position is not None:
            writes.append((time.perf_counter(), result.position))
        n += 1
        delay = started + n / UPDATES_PER_SECOND - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


def _staleness(clients: list[Client], writes: list[tuple[float, int]]) -> list[float]:
    """Per use of a page: how long before the answer the oldest write the page could show, but the
    client's copy does not cover, had committed (0 when the copy covers every earlier write)."""
    samples: list[float] = []
    for client in clients:
        for sent, answered, position in client.uses:
            missing = [committed for committed, at in writes if at > position and committed < sent]
            samples.append(answered - min(missing) if missing else 0.0)
    return samples


async def run(stack: Stack, progress: Progress) -> BenchResult:
    result = BenchResult(NAME, TITLE, quick=stack.quick, environment=environment(stack.stores))
    revalidations, full, mix_seconds = SIZES["quick" if stack.quick else "full"]
    queries = _queries()
    https = [stack.http(2, local_address=buyer_address(200 + i)) for i in range(CLIENTS)]
    try:
        clients = [Client(http) for http in https]
        await _register(clients[0].http, queries)
        progress.phase("warming: every client fetches every page once")
        await _phase(stack, clients, queries, len(queries) * len(clients), conditional=False)
        for client in clients:
            await asyncio.gather(
                *(client.fetch(i, *queries[i], conditional=False) for i in range(len(queries)))
            )
        progress.phase(f"{revalidations} POSTs of {{ __typename }} (the baseline)")
        cpu_typename = await _typenames(stack, clients, revalidations)
        progress.phase(f"{revalidations} revalidations, nothing written")
        cpu_304, statuses_304 = await _phase(stack, clients, queries, revalidations, conditional=True)
        progress.phase(f"{full} full answers")
        cpu_full, statuses_full = await _phase(stack, clients, queries, full, conditional=False)

        progress.phase(f"storefront mix for {mix_seconds:.0f} s with {UPDATES_PER_SECOND:.0f} updates/s")
        for client in clients:
            client.uses.clear()
            client.statuses.clear()
        stop = asyncio.Event()
        writes: list[tuple[float, int]] = []
        writer = asyncio.create_task(_updates(stack, stop, writes))
        deadline = time.perf_counter() + mix_seconds
        mix_cpu_before = stack.cpu.read_one("gateway")

        async def shopper(i: int) -> None:
            client = clients[i]
            n = i
            while time.perf_counter() < deadline:
                index = n % len(queries)
                await client.fetch(index, *queries[index], conditional=True)
                n += 1

        await run_workers(len(clients), shopper)
        mix_cpu_after = stack.cpu.read_one("gateway")
        stop.set()
        await writer
        # Read-model lag: the search model's catch-up after the last write, as the clients see it.
        lag_started = time.perf_counter()
        last = writes[-1][1] if writes else 0
        probe = clients[0]
        while True:
            await probe.fetch(0, *queries[0], conditional=False)
            if probe.copies[0].position >= last or time.perf_counter() - lag_started > 10:
                break
            await asyncio.sleep(0.01)
        lag = time.perf_counter() - lag_started
    finally:
        for http in https:
            await http.aclose()

    mix_statuses = [s for c in clients for s in c.statuses]
    share = mix_statuses.count(304) / max(1, len(mix_statuses))
    per_304 = 1000 * cpu_304 / max(1, len(statuses_304))
    per_full = 1000 * cpu_full / max(1, len(statuses_full))
    per_typename = 1000 * cpu_typename / max(1, revalidations)
    not_304 = len(statuses_304) - statuses_304.count(304)
    # Settled writes only: the last second's writes may not have been revalidated yet.
    stale = _staleness(clients, writes)
    max_age = max((copy.max_age for c in clients for copy in c.copies.values()), default=0.0)
    bound = max_age + max(lag, 0.5)
    worst = max(stale, default=0.0)
    mix_cpu = (
        (mix_cpu_after - mix_cpu_before) if mix_cpu_before is not None and mix_cpu_after is not None else 0
    )
    result.headline = (
        f"{100 * share:.0f} % 304s under {UPDATES_PER_SECOND:.0f} updates/s; CPU per 304 {per_304:.2f} ms "
        f"(goal {CPU_GOAL_MS} ms; {{ __typename }} {per_typename:.2f} ms), "
        f"per full answer {per_full:.2f} ms; oldest missed write {worst:.2f} s"
    )
    result.row("share of 304s (mix, all clients revalidating)", f"{100 * share:.1f} %")
    result.row("gateway CPU per 304", f"{per_304:.3f} ms", f"goal {CPU_GOAL_MS} ms")
    result.row("gateway CPU per full answer", f"{per_full:.2f} ms")
    result.row("gateway CPU per POST of { __typename } (baseline)", f"{per_typename:.3f} ms")
    result.row("gateway CPU per request in the mix", f"{1000 * mix_cpu / max(1, len(mix_statuses)):.2f} ms")
    result.row(
        "oldest write missing from a page a client used (at the answer)",
        f"{worst:.2f} s",
        f"bound: max-age {max_age:.0f} s + lag {lag:.2f} s",
    )
    result.metrics = {
        "clients": CLIENTS,
        "queries": len(queries),
        "updates_per_second": UPDATES_PER_SECOND,
        "writes_in_mix": len(writes),
        "mix_requests": len(mix_statuses),
        "mix_requests_per_second": round(len(mix_statuses) / mix_seconds, 1),
        "share_304": round(share, 4),
        "gateway_cpu_ms_per_304": round(per_304, 4),
        "gateway_cpu_ms_per_full": round(per_full, 3),
        "gateway_cpu_ms_per_typename_post": round(per_typename, 4),
        "gateway_cpu_ms_per_mix_request": round(1000 * mix_cpu / max(1, len(mix_statuses)), 3),
        "revalidations_not_304_while_idle": not_304,
        "max_age_seconds": max_age,
        "read_model_lag_seconds": round(lag, 3),
        "stale_seconds_max": round(worst, 3),
        "stale_seconds_p99": round(percentile(stale, 99), 3) if stale else 0.0,
        "stale_bound_seconds": round(bound, 3),
    }
    result.samples = {"stale_seconds": [round(s, 4) for s in stale[:5000]]}
    result.notes.append(
        "Validators are per read model: every product update changes the version of the search model, "
        "so each page's next revalidation after an update is a full answer; the share of 304s is about "
        "1 - (search-model changes per second) / (revalidations per page per second). A 304 runs no "
        "resolver and no search: the document plan, the read-model versions and the ETag come from "
        "memory, and the budget point is taken from the caller's last budget answer (at most one Redis "
        "round trip per caller a second)."
    )
    if not_304:
        result.status = "failed"
        result.notes.append(f"{not_304} revalidations without any write were answered in full.")
    if worst > bound:
        result.status = "failed"
        result.notes.append(f"A client held a stale page {worst:.2f} s, over the {bound:.2f} s bound.")
    result.notes.append(
        f"p99 of the time a client held a stale page: {result.metrics['stale_seconds_p99']} s."
    )
    return result
