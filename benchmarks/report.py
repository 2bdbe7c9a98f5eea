"""Results: statistics from raw samples, one JSON file per benchmark, SUMMARY.md and PNG plots.

Percentiles are computed here from every raw sample (linear interpolation between
closest ranks), never from histograms.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATUSES = ("ok", "unavailable", "failed")


# ---------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of raw samples, linear between closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_stats(seconds: Sequence[float]) -> dict[str, float]:
    """Milliseconds: n, mean, p50, p95, p99, max."""
    if not seconds:
        return {"n": 0}
    ms = sorted(s * 1000.0 for s in seconds)
    return {
        "n": len(ms),
        "mean": round(sum(ms) / len(ms), 3),
        "p50": round(percentile(ms, 50), 3),
        "p95": round(percentile(ms, 95), 3),
        "p99": round(percentile(ms, 99), 3),
        "max": round(ms[-1], 3),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0 or math.isnan(denominator):
        return None
    return round(numerator / denominator, 3)


def fmt_ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def fmt_rate(value: float | None, unit: str = "/s") -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.1f}{unit}" if value < 100 else f"{value:,.0f}{unit}"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


# ---------------------------------------------------------------- result model


@dataclass
class Row:
    """One line of the summary table: gateway value, baseline value, gateway/baseline."""

    metric: str
    value: str
    baseline: str = ""
    ratio: str = ""


@dataclass
class ProfileReport:
    name: str
    html: str
    text: str
    seconds: float
    findings: list[str] = field(default_factory=list)
    components: dict[str, float] = field(default_factory=dict)
    activities: dict[str, float] = field(default_factory=dict)
    hot_functions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BenchResult:
    name: str
    title: str
    status: str = "ok"
    headline: str = ""
    quick: bool = False
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    seconds: float = 0.0
    rows: list[Row] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    profiles: list[ProfileReport] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    # Raw samples (seconds, or as named) so any statistic can be recomputed later.
    samples: dict[str, list[float]] = field(default_factory=dict)

    def row(self, metric: str, value: str, baseline: str = "", ratio: str = "") -> None:
        self.rows.append(Row(metric, value, baseline, ratio))


def environment(stores: str) -> dict[str, Any]:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": load,
        "stores": stores,
    }


def write_json(result: BenchResult, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    data = asdict(result)
    data["samples"] = {k: [_round_sample(v) for v in values] for k, values in result.samples.items()}
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return path


def _round_sample(value: float) -> float:
    return round(value, 6)


def load_results(directory: Path, order: Sequence[str]) -> list[BenchResult]:
    """Every ``<name>.json`` in ``directory``, in the runner's order."""
    found: list[BenchResult] = []
    for name in order:
        path = directory / f"{name}.json"
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        data["rows"] = [Row(**r) for r in data.get("rows", [])]
        fields_ = set(ProfileReport.__dataclass_fields__)
        data["profiles"] = [
            ProfileReport(**{k: v for k, v in p.items() if k in fields_}) for p in data.get("profiles", [])
        ]
        known = set(BenchResult.__dataclass_fields__)
        found.append(BenchResult(**{k: v for k, v in data.items() if k in known}))
    return found


# ---------------------------------------------------------------- SUMMARY.md


def write_summary(results: Sequence[BenchResult], directory: Path, preamble: Iterable[str] = ()) -> Path:
    lines = ["# Benchmark results", ""]
    lines += list(preamble)
    lines += [
        "",
        "Every gateway number is measured next to its baseline in the same run, on the same",
        "stores, so the ratios (gateway / baseline) are what carries over between machines.",
        "Latencies are client-observed (`time.perf_counter`), percentiles from raw samples.",
        "",
        "| benchmark | status | headline | when | mode |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        mode = "quick" if r.quick else "full"
        lines.append(
            f"| [{r.title}](#{_anchor(r.title)}) | {r.status} | {r.headline} | {r.started_at} | {mode} |"
        )
    for r in results:
        lines += ["", f"## {r.title}", ""]
        lines.append(f"Status: **{r.status}**. {r.headline}")
        lines.append("")
        if r.rows:
            lines += ["| metric | gateway | baseline | ratio |", "|---|---|---|---|"]
            lines += [f"| {row.metric} | {row.value} | {row.baseline} | {row.ratio} |" for row in r.rows]
            lines.append("")
        for note in r.notes:
            lines.append(f"- {note}")
        if r.notes:
            lines.append("")
        for profile in r.profiles:
            lines.append(
                f"Profile `{profile.name}` ({profile.seconds:.1f} s sampled, "
                f"[html]({profile.html}), [text]({profile.text})):"
            )
            lines.append("")
            lines += [f"- {finding}" for finding in profile.findings]
            lines.append("")
        for plot in r.plots:
            lines.append(f"![{plot}]({plot})")
        if r.plots:
            lines.append("")
        env = r.environment
        if env:
            lines.append(
                f"<sub>{env.get('stores', '')}; {env.get('cpus')} CPUs; load average at start "
                f"{env.get('loadavg')}; Python {env.get('python')}; {r.seconds:.0f} s.</sub>"
            )
    path = directory / "SUMMARY.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _anchor(title: str) -> str:
    keep = "".join(c for c in title.lower() if c.isalnum() or c in " -")
    return keep.replace(" ", "-")


# ---------------------------------------------------------------- plots (matplotlib, Agg)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency(path: Path, title: str, series: Mapping[str, Sequence[float]]) -> str:
    """Histogram (log-spaced bins) and empirical CDF of latencies given in seconds."""
    plt = _pyplot()
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4))
    everything = [s * 1000 for values in series.values() for s in values if s > 0]
    if everything:
        low, high = max(min(everything), 0.05), max(everything)
        bins = [low * (high / low) ** (i / 50) for i in range(51)] if high > low else 10
        for label, values in series.items():
            ms = sorted(v * 1000 for v in values)
            if not ms:
                continue
            hist.hist(ms, bins=bins, alpha=0.55, label=f"{label} (n={len(ms)})")
            cdf.plot(ms, [(i + 1) / len(ms) for i in range(len(ms))], label=label)
            cdf.axvline(percentile(ms, 99), linestyle=":", linewidth=0.8)
        hist.set_xscale("log")
        cdf.set_xscale("log")
    hist.set_xlabel("latency (ms, log)")
    hist.set_ylabel("requests")
    cdf.set_xlabel("latency (ms, log); dotted: p99")
    cdf.set_ylabel("fraction ≤ x")
    hist.legend(fontsize=8)
    cdf.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def plot_throughput(
    path: Path,
    title: str,
    series: Mapping[str, Sequence[float]],
    *,
    bin_seconds: float = 1.0,
    unit: str = "ops",
) -> str:
    """Completions per second over time; each series is completion times in seconds from its start."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 3.8))
    for label, times in series.items():
        if not times:
            continue
        end = max(times)
        bins = max(1, math.ceil(end / bin_seconds))
        counts = [0] * bins
        for t in times:
            counts[min(bins - 1, int(t / bin_seconds))] += 1
        xs = [(i + 0.5) * bin_seconds for i in range(bins)]
        ax.plot(xs, [c / bin_seconds for c in counts], marker=".", label=label)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(f"{unit}/s")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def plot_lag(path: Path, title: str, runs: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> str:
    """Per load level: lag (ms) of each write against its commit time (s into the level)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 4))
    for label, (times, lags) in runs.items():
        if times:
            ax.scatter(times, [lag * 1000 for lag in lags], s=3, alpha=0.5, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("commit time (s into the load level)")
    ax.set_ylabel("commit → readable (ms, log)")
    ax.set_title(title)
    ax.legend(fontsize=8, markerscale=4)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def plot_stacked_bars(
    path: Path, title: str, categories: Sequence[str], stacks: Mapping[str, Sequence[int]], ylabel: str
) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    bottoms = [0] * len(categories)
    for label, values in stacks.items():
        ax.bar(categories, values, bottom=bottoms, label=label)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    for x, total in enumerate(bottoms):
        ax.text(x, total, str(total), ha="center", va="bottom")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


# ---------------------------------------------------------------- profiles (pyinstrument sessions)

_REPO = str(Path(__file__).resolve().parent.parent)
# Path fragment -> component; the first match wins, so specific entries come first.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("/pyinstrument/", "profiler overhead"),
    ("/site-packages/graphql/", "graphql-core (parse/validate/execute)"),
    ("/site-packages/strawberry/", "strawberry"),
    ("/site-packages/sqlalchemy/", "SQLAlchemy"),
    ("/site-packages/asyncpg/", "asyncpg"),
    ("/site-packages/elasticsearch/", "elasticsearch client"),
    ("/site-packages/elastic_transport/", "elasticsearch client"),
    ("/site-packages/httpx/", "httpx/httpcore"),
    ("/site-packages/httpcore/", "httpx/httpcore"),
    ("/site-packages/aiohttp/", "aiohttp"),
    ("/site-packages/uvicorn/", "uvicorn/httptools"),
    ("/site-packages/httptools/", "uvicorn/httptools"),
    ("/site-packages/h11/", "uvicorn/httptools"),
    ("/site-packages/starlette/", "Starlette"),
    ("/site-packages/mongomock/", "MongoDB stand-in"),
    ("/gateway/embedded_mongo", "MongoDB stand-in"),
    ("/site-packages/pymongo/", "pymongo"),
    ("/site-packages/bson/", "pymongo"),
    ("/site-packages/redis/", "redis client"),
    ("/site-packages/jwt/", "PyJWT"),
    ("/site-packages/aiodataloader", "DataLoader"),
    ("/site-packages/prometheus_client/", "prometheus metrics"),
    (f"{_REPO}/gateway/", "gateway (ours)"),
    (f"{_REPO}/commands/", "commands (ours)"),
    (f"{_REPO}/queries/", "queries (ours)"),
    (f"{_REPO}/projections/", "projections (ours)"),
    ("/logging/", "logging"),
    ("/json/", "json"),
    ("/uuid.py", "uuid"),
)


def _frame(identifier: str) -> tuple[str, str, str]:
    """(function, file path, line) from a pyinstrument frame identifier."""
    parts = identifier.split("\x01", 1)[0].split("\x00")
    while len(parts) < 3:
        parts.append("")
    return parts[0], parts[1], parts[2]


def _component(path: str) -> str | None:
    for fragment, name in COMPONENTS:
        if fragment in path:
            return name
    return None


def _idle(stack: Sequence[str]) -> bool:
    function = _frame(stack[-1])[0]
    if function in {"epoll.poll", "select.select", "poll.poll", "kqueue.control"}:
        return True
    return any(_frame(f)[0] == "select" and _frame(f)[1].endswith("selectors.py") for f in stack[-3:])


# Projection modules that are machinery, not one projector: a sample in them alone is "runner".
_PROJECTION_MACHINERY = {"runner", "checkpoints", "version_guard", "rebuild", "tables", "__init__"}


def _activity(stack: Sequence[str]) -> str:
    """What the process was doing in a sample, by the outermost frame of ours that says so:
    a projector (named by its module), the payment webhook, a GraphQL request, or other."""
    projector = None
    in_projections = False
    for identifier in stack:
        path = _frame(identifier)[1]
        if f"{_REPO}/projections/" in path:
            in_projections = True
            module = path.split(f"{_REPO}/projections/", 1)[1].split("/", 1)[0].removesuffix(".py")
            if module not in _PROJECTION_MACHINERY and projector is None:
                projector = module
        elif f"{_REPO}/gateway/http/webhooks" in path:
            return "payment webhook"
        elif f"{_REPO}/gateway/http/graphql_view" in path:
            return "GraphQL requests"
    if in_projections:
        return f"projector {projector or 'runner'}"
    return "other (HTTP parsing, event loop, background tasks)"


def analyze_profile(session: Any, *, name: str, seconds: float) -> ProfileReport:
    """Where the gateway process spent its busy time, from a pyinstrument ``Session``: each
    sample goes to the deepest frame that belongs to a known component (so stdlib helpers
    count for whoever called them)."""
    total = idle = 0.0
    by_component: dict[str, float] = {}
    by_function: dict[tuple[str, str], float] = {}
    by_activity: dict[str, float] = {}
    for stack, duration in session.frame_records:
        total += duration
        if not stack or _idle(stack):
            idle += duration
            continue
        component = "event loop / asyncio"
        for identifier in reversed(stack):
            found = _component(_frame(identifier)[1])
            if found is not None:
                component = found
                break
        by_component[component] = by_component.get(component, 0.0) + duration
        activity = _activity(stack)
        by_activity[activity] = by_activity.get(activity, 0.0) + duration
        function, path, line = _frame(stack[-1])
        short = path.replace(_REPO + "/", "").split("/site-packages/")[-1]
        key = (function, f"{short}:{line}")
        by_function[key] = by_function.get(key, 0.0) + duration
    busy = max(total - idle, 1e-9)
    components = {k: round(100 * v / busy, 1) for k, v in sorted(by_component.items(), key=lambda kv: -kv[1])}
    hot: list[dict[str, Any]] = [
        {"function": f, "where": w, "percent_of_busy": round(100 * t / busy, 1)}
        for (f, w), t in sorted(by_function.items(), key=lambda kv: -kv[1])[:10]
    ]
    activities = {k: round(100 * v / busy, 1) for k, v in sorted(by_activity.items(), key=lambda kv: -kv[1])}
    ours = sum(v for k, v in components.items() if "(ours)" in k)
    graphql = components.get("graphql-core (parse/validate/execute)", 0.0) + components.get("strawberry", 0.0)
    drivers = sum(
        components.get(k, 0.0)
        for k in ("SQLAlchemy", "asyncpg", "elasticsearch client", "httpx/httpcore", "aiohttp",
                  "MongoDB stand-in", "pymongo", "redis client")
    )  # fmt: skip
    top = ", ".join(f"{k} {v:.0f}%" for k, v in list(components.items())[:7])
    findings = [
        f"The event loop was busy {100 * (total - idle) / max(total, 1e-9):.0f}% of the {total:.1f} "
        "s sampled "
        "(the rest waiting on sockets).",
        f"Busy time by component (deepest known frame): {top}.",
        "Busy time by activity (outermost frame of ours): "
        + ", ".join(f"{k} {v:.0f}%" for k, v in activities.items())
        + ".",
        f"GraphQL machinery (graphql-core + strawberry) {graphql:.0f}%, store client libraries "
        f"(SQLAlchemy, asyncpg, search, MongoDB, Redis) {drivers:.0f}%, our own code {ours:.0f}%.",
        "Hottest functions (self time): "
        + "; ".join(f"`{h['function']}` ({h['where']}) {h['percent_of_busy']}%" for h in hot[:5])
        + ".",
    ]
    cpu_time = getattr(session, "cpu_time", None)
    if isinstance(cpu_time, int | float) and total > 0:
        findings.insert(
            1,
            f"The process was on a CPU {cpu_time:.1f} s of the {total:.1f} s sampled "
            f"({100 * cpu_time / total:.0f}%): samples are wall-clock, so on a loaded machine "
            "'busy' includes waiting for a core; the shares below are of that busy time.",
        )
    stand_in = components.get("MongoDB stand-in", 0.0)
    if stand_in >= 10:
        findings.append(
            f"The in-memory MongoDB stand-in (mongomock) takes {stand_in:.0f}% by itself: it "
            "filters by scanning "
            "every document of a collection in Python, so cart reads and the carts projector get "
            "slower as carts "
            "accumulate. A real MongoDB serves these by the `_id` index, outside this process."
        )
    syscalls = sum(h["percent_of_busy"] for h in hot if h["function"] in {"socket.send", "socket.sendall"})
    if syscalls >= 5:
        findings.append(
            f"`socket.send` shows {syscalls:.0f}% self time: on 2 shared cores a send wakes the "
            "store process "
            "on the other end, which can take the CPU before the call returns, so this is mostly "
            "time the gateway "
            "waited for a core, not work of its own."
        )
    return ProfileReport(
        name=name,
        html="",
        text="",
        seconds=seconds,
        findings=findings,
        components=components,
        activities=activities,
        hot_functions=hot,
    )


# ---------------------------------------------------------------- the per-node budget in docs/scaling.md

BUDGET_START = "<!-- bench:budget:start -->"
BUDGET_END = "<!-- bench:budget:end -->"


def _get(data: Mapping[str, Any], *path: str | int) -> Any:
    value: Any = data
    for key in path:
        mapped = isinstance(value, Mapping) and key in value
        listed = isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value)
        if mapped or listed:
            value = value[key]
        else:
            return None
    return value


def _num(value: Any, digits: int = 0, unit: str = "") -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _ours(purchase: Mapping[str, Any], phase: str) -> Any:
    """Our CPU per purchase (gateway + projector worker); older results had the gateway alone."""
    ours = _get(purchase, f"ours_cpu_ms_per_purchase_{phase}")
    return ours if ours is not None else _get(purchase, f"gateway_cpu_ms_per_purchase_{phase}")


def budget_lines(results: Sequence[BenchResult]) -> list[str]:
    """The per-node budget table docs/scaling.md carries, from the latest results."""
    by_name = {r.name: r for r in results if r.status != "failed"}
    m: dict[str, Mapping[str, Any]] = {name: r.metrics for name, r in by_name.items()}
    when = max((r.started_at for r in results), default="")
    pu, fs, se, wr, lag, n1 = (
        m.get(k, {}) for k in ("purchase", "flash_sale", "search", "writes", "projection_lag", "n_plus_one")
    )
    sustained = _get(lag, "highest_sustained_rate")
    levels: list[dict[str, Any]] = _get(lag, "levels") or []
    level = next((lv for lv in levels if lv.get("offered") == sustained), {})
    calls_50 = _get(n1, "store_calls", "50")
    rows = [
        ("Purchase (one-line `cartCreate` + `checkoutComplete`), our CPU incl. every projector",
         f"{_num(_ours(pu, 'one'), 1)} ms (1 buyer), "
         f"{_num(_ours(pu, 'concurrent'), 1)} ms (8 buyers), of which the gateway "
         f"{_num(_get(pu, 'gateway_cpu_ms_per_purchase_one'), 1)} / "
         f"{_num(_get(pu, 'gateway_cpu_ms_per_purchase_concurrent'), 1)} ms; p50 "
         f"{_num(_get(pu, 'one_buyer', 'purchase_ms', 'p50'))} ms alone, "
         f"{_num(_get(pu, 'concurrent_buyers', 'rate'), 1)} purchases/s at 8",
         f"payment sandbox {_num(_get(pu, 'concurrent_buyers', 'cpu_ms_per_purchase', 'payment sandbox'), 1)}"
         f" ms, PostgreSQL {_num(_get(pu, 'concurrent_buyers', 'cpu_ms_per_purchase', 'PostgreSQL'), 1)} ms"
         " CPU per purchase (8 buyers)"),
        ("Cart commands (`cartLinesAdd`), one gateway process",
         f"{_num(_get(wr, 'adds', 'rate'))}/s, p50 {_num(_get(wr, 'adds', 'ms', 'p50'))} ms, "
         f"{_num(_get(wr, 'gateway_cpu_ms_per_add'), 1)} ms CPU each",
         f"bare ledger append {_num(_get(wr, 'baseline_adds', 'rate'))}/s "
         f"(ratio {_num(_get(wr, 'throughput_ratio'), 2)})"),
        ("Checkout of one hot SKU (64 buyers), one gateway process",
         f"{_num(_get(fs, 'gateway', 'rate'), 1)} confirmed/s, p50 "
         f"{_num(_get(fs, 'gateway', 'ms', 'p50'))} ms, "
         f"{_num(_get(fs, 'gateway', 'cpu_ms_per_unit'))} ms CPU per unit",
         f"ratio to the bare reservation {_num(_get(fs, 'throughput_ratio'), 3)}"),
        ("Hot-SKU ceiling: one `inventory_items` row",
         f"{_num(_get(fs, 'baseline', 'rate'))} reservations/s (bare, p50 "
         f"{_num(_get(fs, 'baseline', 'ms', 'p50'))} ms)",
         f"{_num(_get(fs, 'baseline_bucketed', 'buckets'))} bucket rows: "
         f"{_num(_get(fs, 'baseline_bucketed', 'rate'))}/s"),
        ("Product search (text + 2 filters + facets), 8 concurrent",
         f"{_num(_get(se, 'gateway_rps'))} req/s, p50 {_num(_get(se, 'gateway_ms', 'p50'))} ms, "
         f"p99 {_num(_get(se, 'gateway_ms', 'p99'))} ms, "
         f"{_num(_get(se, 'gateway_cpu_ms_per_search'), 1)} ms CPU",
         f"engine direct {_num(_get(se, 'direct_rps'))} req/s "
         f"(p50 ratio {_num(_get(se, 'overhead_ratio_p50'), 2)})"),
        ("Product listing by facets (page of 10), one client at a time",
         f"p50 {_num(_get(se, 'small_page', 'gateway_ms', 'p50'), 1)} ms repeated (kept answers), "
         f"{_num(_get(se, 'small_page_new', 'gateway_ms', 'p50'), 1)} ms new; "
         f"{_num(_get(se, 'small_page', 'gateway_cpu_ms_per_search'), 1)} / "
         f"{_num(_get(se, 'small_page_new', 'gateway_cpu_ms_per_search'), 1)} ms CPU",
         f"engine direct p50 {_num(_get(se, 'small_page_new', 'direct_ms', 'p50'), 1)} ms"),
        ("Carts projector (one worker)",
         f"sustains {_num(sustained)} writes/s (lag p50 {_num(_get(level, 'lag_ms', 'p50'))} ms, "
         f"p99 {_num(_get(level, 'lag_ms', 'p99'))} ms)",
         f"saturated drain {_num(_get(lag, 'backlog', 'events_per_second'))} events/s"),
        ("PostgreSQL commits (1-row INSERT, 32 connections)",
         f"{_num(_get(wr, 'commit_ceiling', 'plain_tps'))} tx/s",
         f"with `pg_notify` in each transaction {_num(_get(wr, 'commit_ceiling', 'notify_tps'))} tx/s"),
        ("Cart read with 50 lines and variants",
         f"{_num(sum(calls_50.values()) if calls_50 else None)} store calls", "the same as a 1-line cart"),
    ]  # fmt: skip
    env = next((r.environment for r in results if r.environment), {})
    lines = [
        f"Measured by `make bench` on {when}: {env.get('cpus', '?')} CPUs, load average at start "
        f"{env.get('loadavg', '?')}, {env.get('stores', 'stores unknown')}. See "
        "`benchmarks/results/SUMMARY.md` for the full tables.",
        "",
        "| per node | budget | baseline on the same stores |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return lines


def update_budget(doc: Path, results: Sequence[BenchResult]) -> bool:
    """Replace the block between the budget markers of ``doc``; False when it has none."""
    if not doc.exists():
        return False
    content = doc.read_text()
    start, end = content.find(BUDGET_START), content.find(BUDGET_END)
    if start < 0 or end < start:
        return False
    block = "\n".join([BUDGET_START, *budget_lines(results), BUDGET_END])
    doc.write_text(content[:start] + block + content[end + len(BUDGET_END) :])
    return True
