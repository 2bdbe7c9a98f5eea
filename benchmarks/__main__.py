"""``python -m benchmarks`` (``make bench``): start the stack once, run each benchmark with
its baseline, write ``benchmarks/results/<name>.json``, PNG plots and ``SUMMARY.md``.

Flags: ``--only NAME`` (repeatable), ``--quick`` (small, fast smoke run), ``--list``,
``--results DIR``. Exit status 1 when a benchmark failed (an unavailable feature is not a
failure: it is reported as such).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from benchmarks import cache, flash_sale, n_plus_one, projection_lag, purchase, search, writes
from benchmarks.harness import REPO, RESULTS_DIR, HarnessError, Stack, open_stack
from benchmarks.progress import Progress
from benchmarks.report import (
    BenchResult,
    environment,
    load_results,
    update_budget,
    write_json,
    write_summary,
)

CATALOG_PRODUCTS = {"full": 3000, "quick": 300}
SCALING_DOC = REPO / "docs" / "scaling.md"


@dataclass(frozen=True)
class Benchmark:
    module: ModuleType
    # Hard stop for the whole benchmark (each also bounds its own phases well below this).
    limit_seconds: float
    quick_limit_seconds: float

    @property
    def name(self) -> str:
        return str(self.module.NAME)

    @property
    def title(self) -> str:
        return str(self.module.TITLE)

    @property
    def needs_catalog(self) -> bool:
        return bool(self.module.NEEDS_CATALOG)

    def runner(self) -> Callable[[Stack, Progress], Awaitable[BenchResult]]:
        run: Callable[[Stack, Progress], Awaitable[BenchResult]] = self.module.run
        return run


# In the order of the issue (and of SUMMARY.md).
BENCHMARKS = (
    Benchmark(purchase, 300, 90),
    Benchmark(flash_sale, 420, 180),
    Benchmark(search, 150, 60),
    Benchmark(projection_lag, 200, 60),
    Benchmark(writes, 180, 60),
    Benchmark(n_plus_one, 60, 60),
    Benchmark(cache, 150, 60),
)
ORDER = [b.name for b in BENCHMARKS]
# Run order: the flash sale leaves thousands of carts behind, which slows every later cart
# read on the in-memory MongoDB stand-in (it scans), so it runs last.
RUN_ORDER = ("n_plus_one", "search", "cache", "writes", "projection_lag", "purchase", "flash_sale")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", action="append", choices=ORDER, metavar="NAME", help=f"one of {', '.join(ORDER)}"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run of a minute or two")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="output directory")
    return parser


TIME_BUDGET_SECONDS = {"full": 17 * 60, "quick": 9 * 60}
# Kept in reserve for each benchmark still to come when one is given its time limit.
RESERVE_PER_BENCHMARK = 20.0


async def _run_all(
    selected: Sequence[Benchmark], quick: bool, results_dir: Path, progress: Progress
) -> list[str]:
    failed: list[str] = []
    deadline = time.perf_counter() + TIME_BUDGET_SECONDS["quick" if quick else "full"]
    async with open_stack(quick, results_dir, progress) as stack:
        if any(b.needs_catalog for b in selected):
            await stack.seed_catalog(CATALOG_PRODUCTS["quick" if quick else "full"], progress)
        for index, bench in enumerate(selected):
            progress.bench(f"{bench.title} ({bench.name})")
            started = time.perf_counter()
            left = deadline - started - RESERVE_PER_BENCHMARK * (len(selected) - index - 1)
            limit = min(bench.quick_limit_seconds if quick else bench.limit_seconds, max(left, 10.0))
            try:
                result = await asyncio.wait_for(bench.runner()(stack, progress), limit)
            except Exception as exc:
                detail = "".join(traceback.format_exception(exc))
                if isinstance(exc, TimeoutError):
                    detail = f"stopped after its {limit:.0f} s limit"
                progress.note(f"FAILED: {detail.strip().splitlines()[-1]}")
                result = BenchResult(
                    bench.name, bench.title, status="failed", quick=quick,
                    headline=f"failed: {detail.strip().splitlines()[-1]}",
                    environment=environment(stack.stores),
                )  # fmt: skip
                result.notes.append(f"```\n{detail.strip()}\n```")
                result.notes.append(stack.gateway.tail())
            result.seconds = time.perf_counter() - started
            if result.status == "failed":
                failed.append(bench.name)
            write_json(result, results_dir)
            progress.note(f"{result.status}: {result.headline}")
    return failed


async def _stopped_by_sigterm(run: Awaitable[list[str]]) -> list[str]:
    """``run``, cancelled by SIGTERM as Ctrl-C cancels it: the stack then stops everything it
    started (the embedded PostgreSQL would outlive a process killed outright)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for bench in BENCHMARKS:
            print(f"{bench.name:16} {bench.title}")
        return 0
    by_name = {b.name: b for b in BENCHMARKS}
    selected = [by_name[name] for name in RUN_ORDER if not args.only or name in args.only]
    results_dir: Path = args.results.resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    started = time.perf_counter()
    try:
        # asyncio's own loop, as the baselines were measured on (not the gateway's uvloop).
        failed = asyncio.run(_stopped_by_sigterm(_run_all(selected, args.quick, results_dir, progress)))
    except HarnessError as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 2
    except asyncio.CancelledError:
        print("benchmarks: stopped by SIGTERM", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("benchmarks: interrupted", file=sys.stderr)
        return 130
    results = load_results(results_dir, ORDER)
    summary = write_summary(
        results,
        results_dir,
        preamble=[f"Written by `make bench`{' --quick' if args.quick else ''}; the last run took "
                  f"{time.perf_counter() - started:.0f} s. Per-benchmark JSON (with raw samples) "
                  "sits next to this file; profiles under `profiles/`."],
    )  # fmt: skip
    print(f"results: {summary}")
    # A full run into the default directory refreshes the per-node budget in docs/scaling.md.
    full = [r for r in results if not r.quick]
    complete = not args.quick and results_dir == RESULTS_DIR and len(full) == len(BENCHMARKS)
    if complete and update_budget(SCALING_DOC, full):
        print(f"per-node budget updated in {SCALING_DOC}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
