"""The gateway process the benchmarks drive (``python -m benchmarks.server``).

Exactly what ``commerce-gateway serve`` runs (``build_container``, ``wire``, projectors
in-process, ``build_app`` under uvicorn with the same options), on a free port of
127.0.0.1 printed as one JSON line on stdout, plus benchmark-only endpoints under
``/_bench/`` that the harness uses to look inside the process:

- ``calls/install`` | ``calls/uninstall`` | ``calls/result?key=K``: count store calls
  (PostgreSQL statements, search requests, MongoDB operations, Redis commands) made while
  serving requests that carry ``x-bench-count: K``;
- ``profile/start`` | ``profile/stop``: pyinstrument over the event loop thread;
- ``lag/start`` | ``lag/wait`` | ``lag/collect`` | ``lag/stop``: the moment the carts
  projector has written each cart event to the read store (``time.perf_counter``, which is
  CLOCK_MONOTONIC and so comparable with the load generator's clock in another process);
- ``runner/pause`` | ``runner/resume``: stop and restart one projector without resetting it;
- ``cpu``: this process's CPU time; ``stats``: how many cart documents the read store holds.

Nothing here is installed until asked for, so the measured request path is the product's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import inspect
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks import announced
from commands.store.ledger.reader import RecordedEvent
from gateway.bootstrap.background import PeriodicJobs, rebalance_once
from gateway.bootstrap.container import Container, build_container
from gateway.bootstrap.heap import settle_startup_heap
from gateway.bootstrap.logging import configure_logging
from gateway.bootstrap.settings import PROJECTORS_NONE, Settings
from gateway.bootstrap.wiring import wire
from gateway.http.app import build_app

COUNT_HEADER = b"x-bench-count"
PROFILE_FILE_INTERVAL = 0.02
_MONGO_METHODS = (
    "find", "find_one", "aggregate", "count_documents", "estimated_document_count", "distinct",
    "insert_one", "insert_many", "update_one", "update_many", "replace_one", "delete_one",
    "delete_many", "find_one_and_update", "bulk_write",
)  # fmt: skip


class Tally:
    """Store calls of one counted request: how many, and the wall time spent in them."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}

    def add(self, store: str, seconds: float) -> None:
        self.calls[store] += 1
        self.seconds[store] = self.seconds.get(store, 0.0) + seconds

    def as_dict(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "seconds": self.seconds}


_tally: contextvars.ContextVar[Tally | None] = contextvars.ContextVar("bench_tally", default=None)
# Set while a counted store call runs, so calls it makes internally are not counted again.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("bench_inside", default=False)


def _timed_async(store: str, original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def call(*args: Any, **kwargs: Any) -> Any:
        tally = _tally.get()
        if tally is None or _inside.get():
            return await original(*args, **kwargs)
        token = _inside.set(True)
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            tally.add(store, time.perf_counter() - started)
            _inside.reset(token)

    return call


def _timed_sync(store: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        tally = _tally.get()
        if tally is None or _inside.get():
            return original(*args, **kwargs)
        token = _inside.set(True)
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            tally.add(store, time.perf_counter() - started)
            _inside.reset(token)

    return call


class CallCounters:
    """Wraps each store client at its boundary; counts only inside counted requests."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._undo: list[Callable[[], None]] = []
        self.results: dict[str, dict[str, Any]] = {}

    @property
    def installed(self) -> bool:
        return bool(self._undo)

    def install(self) -> None:
        if self._undo:
            return
        container = self._container

        def before(_conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
            if _tally.get() is not None:
                context._bench_started = time.perf_counter()

        def after(_conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
            tally = _tally.get()
            started = getattr(context, "_bench_started", None)
            if tally is not None and started is not None:
                tally.add("postgres", time.perf_counter() - started)

        sync_engine = container.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", before)
        event.listen(sync_engine, "after_cursor_execute", after)
        self._undo.append(lambda: event.remove(sync_engine, "before_cursor_execute", before))
        self._undo.append(lambda: event.remove(sync_engine, "after_cursor_execute", after))

        transport = container.search.transport
        original_search = transport.perform_request
        setattr(transport, "perform_request", _timed_async("search", original_search))  # noqa: B010
        self._undo.append(lambda: setattr(transport, "perform_request", original_search))

        redis = container.redis
        original_redis = redis.execute_command
        setattr(redis, "execute_command", _timed_async("redis", original_redis))  # noqa: B010
        self._undo.append(lambda: setattr(redis, "execute_command", original_redis))

        collection_type = type(container.mongo["carts"])
        for name in _MONGO_METHODS:
            original = getattr(collection_type, name, None)
            if original is None:
                continue
            wrapped = (
                _timed_async("mongodb", original)
                if inspect.iscoroutinefunction(original)
                else _timed_sync("mongodb", original)
            )
            setattr(collection_type, name, wrapped)
            self._undo.append(functools.partial(setattr, collection_type, name, original))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()


class ApplyTimes:
    """When the carts projector finished writing each cart event to the read store."""

    def __init__(self, container: Container, projection: str = "carts") -> None:
        self._runner = container.runner(projection)
        self.applied: dict[int, float] = {}
        self.batches = 0
        self._changed = asyncio.Event()
        self._installed = False

    def start(self) -> None:
        self.applied.clear()
        self.batches = 0
        if self._installed:
            return
        projection = self._runner.projection
        original = projection.apply

        async def timed(events: Sequence[RecordedEvent], conn: Any) -> None:
            await original(events, conn)
            now = time.perf_counter()
            self.batches += 1
            for recorded in events:
                if recorded.stream_type == "cart":
                    self.applied.setdefault(recorded.position, now)
            self._changed.set()

        projection.apply = timed  # type: ignore[method-assign]
        self._installed = True

    def stop(self) -> None:
        if self._installed:
            del self._runner.projection.apply
            self._installed = False

    async def wait(self, positions: Sequence[int], timeout: float) -> int:
        """Wait until every position was applied; returns how many are still missing."""
        deadline = time.perf_counter() + timeout
        wanted = set(positions)
        while True:
            wanted -= self.applied.keys()
            remaining = deadline - time.perf_counter()
            if not wanted or remaining <= 0:
                return len(wanted)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))


class Control:
    def __init__(self, container: Container, profile_dir: Path) -> None:
        self.container = container
        self.counters = CallCounters(container)
        self.apply_times: ApplyTimes | None = None
        self.profile_dir = profile_dir
        self._profiler: Any = None
        self._profile_name = ""
        self._profile_started = 0.0

    def app(self) -> Starlette:
        def post(path: str, handler: Callable[[Request], Awaitable[JSONResponse]]) -> Route:
            return Route(f"/_bench/{path}", handler, methods=["POST"])

        return Starlette(
            routes=[
                post("calls/install", self.calls_install),
                post("calls/uninstall", self.calls_uninstall),
                Route("/_bench/calls/result", self.calls_result),
                post("profile/start", self.profile_start),
                post("profile/stop", self.profile_stop),
                post("lag/start", self.lag_start),
                post("lag/wait", self.lag_wait),
                post("lag/collect", self.lag_collect),
                post("lag/stop", self.lag_stop),
                post("runner/pause", self.runner_pause),
                post("runner/resume", self.runner_resume),
                post("hot-switch", self.hot_switch),
                Route("/_bench/cpu", self.cpu),
                Route("/_bench/stats", self.stats),
                Route("/_bench/connections", self.connections),
            ]
        )

    async def calls_install(self, _request: Request) -> JSONResponse:
        self.counters.install()
        return JSONResponse({"installed": True})

    async def calls_uninstall(self, _request: Request) -> JSONResponse:
        self.counters.uninstall()
        self.counters.results.clear()
        return JSONResponse({"installed": False})

    async def calls_result(self, request: Request) -> JSONResponse:
        key = request.query_params.get("key", "")
        return JSONResponse(self.counters.results.get(key, {}))

    async def profile_start(self, request: Request) -> JSONResponse:
        from pyinstrument import Profiler

        body = await request.json()
        if self._profiler is not None:
            return JSONResponse({"error": "a profile is already running"}, 409)
        self._profile_name = str(body["name"])
        # The whole event loop thread: every request, projector batch and background task.
        self._profiler = Profiler(interval=0.001, async_mode="disabled")
        self._profiler.start()
        self._profile_started = time.perf_counter()
        return JSONResponse({"started": self._profile_name})

    async def profile_stop(self, _request: Request) -> JSONResponse:
        from pyinstrument.renderers import HTMLRenderer

        from benchmarks.report import analyze_profile

        profiler, self._profiler = self._profiler, None
        if profiler is None:
            return JSONResponse({"error": "no profile is running"}, 409)
        session = profiler.stop()
        seconds = time.perf_counter() - self._profile_started
        # Findings from every sample; the HTML view gets a 20 ms resampling so it stays small.
        report = analyze_profile(session, name=self._profile_name, seconds=seconds)
        light = session.resample(interval=PROFILE_FILE_INTERVAL)
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        base = self.profile_dir / self._profile_name
        paths = {"html": base.with_suffix(".html"), "text": base.with_suffix(".txt")}
        paths["html"].write_text(HTMLRenderer().render(light))
        paths["text"].write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        # Every sample, for questions the findings do not answer (who calls a hot function):
        # `pyinstrument --load <file>`; large, so not committed (.gitignore).
        session.save(str(base.with_suffix(".pyisession")))
        for kind, path in paths.items():
            setattr(report, kind, str(path))
        return JSONResponse(dataclasses.asdict(report))

    async def lag_start(self, _request: Request) -> JSONResponse:
        if self.apply_times is None:
            self.apply_times = ApplyTimes(self.container)
        self.apply_times.start()
        return JSONResponse({"now": time.perf_counter()})

    async def lag_wait(self, request: Request) -> JSONResponse:
        body = await request.json()
        assert self.apply_times is not None
        missing = await self.apply_times.wait(body["positions"], float(body["timeout"]))
        return JSONResponse({"missing": missing})

    async def lag_collect(self, _request: Request) -> JSONResponse:
        assert self.apply_times is not None
        applied = sorted(self.apply_times.applied.items())
        batches = self.apply_times.batches
        self.apply_times.applied = {}
        self.apply_times.batches = 0
        return JSONResponse({"applied": applied, "batches": batches})

    async def lag_stop(self, _request: Request) -> JSONResponse:
        if self.apply_times is not None:
            self.apply_times.stop()
        return JSONResponse({"stopped": True})

    async def runner_pause(self, request: Request) -> JSONResponse:
        runner = self.container.runner(str((await request.json())["name"]))
        await runner.stop()
        return JSONResponse({"paused": runner.name, "now": time.perf_counter()})

    async def runner_resume(self, request: Request) -> JSONResponse:
        runner = self.container.runner(str((await request.json())["name"]))
        now = time.perf_counter()
        if not runner.running:
            runner.start()
        return JSONResponse({"resumed": runner.name, "now": now})

    async def hot_switch(self, request: Request) -> JSONResponse:
        """The automatic hot-SKU switch's threshold from now on (0: off); read by its next look."""
        per_second = float((await request.json())["per_second"])
        settings = self.container.settings.with_overrides(stock_hot_reservations_per_second=per_second)
        self.container.settings = settings
        return JSONResponse({"per_second": per_second})

    async def stats(self, _request: Request) -> JSONResponse:
        carts = await self.container.mongo["carts"].count_documents({})
        return JSONResponse({"cart_documents": carts})

    async def connections(self, _request: Request) -> JSONResponse:
        return JSONResponse(dataclasses.asdict(self.container.connections.stats()))

    async def cpu(self, _request: Request) -> JSONResponse:
        return JSONResponse({"process_time": time.process_time(), "now": time.perf_counter()})


def dispatcher(gateway: ASGIApp, control: Control) -> ASGIApp:
    """``/_bench/*`` to the control app, everything else to the gateway unchanged."""
    control_app = control.app()
    counters = control.counters

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/_bench/"):
            await control_app(scope, receive, send)
            return
        if counters.installed:
            key = next((v.decode() for k, v in scope.get("headers", []) if k == COUNT_HEADER), None)
            if key is not None:
                tally = Tally()
                token = _tally.set(tally)
                started = time.perf_counter()
                try:
                    await gateway(scope, receive, send)
                finally:
                    _tally.reset(token)
                    counters.results[key] = {
                        **tally.as_dict(),
                        "request_seconds": time.perf_counter() - started,
                    }
                return
        await gateway(scope, receive, send)

    return app


async def serve() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    profile_dir = Path(os.environ.get("BENCH_PROFILE_DIR", "benchmarks/results/profiles"))
    container = await build_container(settings)
    try:
        wire(container)
        if settings.run_projectors != PROJECTORS_NONE:
            await container.start_projectors(scope=settings.run_projectors)
        app = dispatcher(build_app(container), Control(container, profile_dir))
        # Of the gateway's periodic jobs, the stock one only (buckets respread, the hot-SKU
        # switch): payments here always settle, and no lease expires within a run.
        jobs = PeriodicJobs()
        jobs.every(settings.stock_rebalance_seconds, "stock-rebalance", lambda: rebalance_once(container))
        container.on_close(jobs.stop)
        settle_startup_heap()
        # The same options as ``commerce-gateway serve``.
        await announced.serve_announced(
            uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
        )
    finally:
        await container.close()


if __name__ == "__main__":
    sys.exit(announced.run(serve))
