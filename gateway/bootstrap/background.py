"""Background work of a serving gateway: payment reconciliation, the reservation sweeper and
the rebalancing of hot SKUs' stock buckets.

Each job runs on its own interval, logs its failures and keeps going: a store or
the provider being down delays the job, never the process. The tasks stop with
the container (``Container.on_close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from commands.checkout.reconcile import ReconcileReport, reconcile
from commands.inventory import buckets, lease_sweep
from commands.inventory.hot_switch import HotSwitch, spread_hot_skus
from commands.store import idempotency
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.container import Container
from gateway.stores.embedded import EmbeddedStores

log = logging.getLogger("gateway.background")
EMBEDDED_WATCH_SECONDS = 5.0
# Calls in flight are left alone: an attempt is reconciled once it is this much older than a call can take.
RECONCILE_GRACE_SECONDS = 1.0


def system_metadata(job: str) -> MessageMetadata:
    return MessageMetadata(correlation_id=f"{job}-{uuid.uuid4().hex[:12]}", actor=f"system:{job}")


async def reconcile_once(container: Container) -> ReconcileReport:
    settings = container.settings
    report = await reconcile(
        container.services.settlement,
        system_metadata("reconcile"),
        older_than=timedelta(seconds=2 * settings.payment_timeout_seconds + RECONCILE_GRACE_SECONDS),
        abandon_after=timedelta(seconds=settings.payment_abandon_seconds),
    )
    await idempotency.purge_expired(container.engine)
    if report.checked:
        log.info("payments reconciled", extra={"report": report.__dict__})
    return report


async def sweep_once(container: Container) -> list[str]:
    expired = await lease_sweep.expire_due(container.engine, system_metadata("reservation-sweep"))
    if expired:
        log.info("expired reservations released", extra={"orders": len(expired)})
    return expired


async def rebalance_once(container: Container) -> list[str]:
    """Hot SKUs spread first (the automatic switch), then drifted buckets respread."""
    settings = container.settings
    switch = HotSwitch(settings.stock_hot_reservations_per_second, settings.stock_hot_buckets)
    # Never raises (it logs): the respread below runs whatever became of it.
    await spread_hot_skus(container.engine, system_metadata("stock-hot-switch"), switch)
    moved = await buckets.rebalance_due(container.engine, system_metadata("stock-rebalance"))
    if moved:
        log.info("hot SKUs' free stock spread over their buckets again", extra={"skus": moved})
    return moved


class PeriodicJobs:
    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def names(self) -> list[str]:
        return [task.get_name() for task in self._tasks]

    def every(self, seconds: float, name: str, job: Callable[[], Awaitable[object]]) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(_repeat(seconds, name, job), name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


async def _repeat(seconds: float, name: str, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job failed", extra={"job": name})


async def start_background(
    container: Container, *, webhook_url: str | None, stopping: Callable[[], bool] = lambda: False
) -> PeriodicJobs:
    """Connect the payment provider (starting the sandbox if configured so) and start the jobs."""
    await container.services.payments.start(webhook_url)
    settings = container.settings
    jobs = PeriodicJobs()
    if settings.background_jobs:
        reconcile, sweep = settings.reconcile_interval_seconds, settings.reservation_sweep_seconds
        jobs.every(reconcile, "payment-reconcile", lambda: reconcile_once(container))
        jobs.every(sweep, "reservation-sweep", lambda: sweep_once(container))
        jobs.every(settings.stock_rebalance_seconds, "stock-rebalance", lambda: rebalance_once(container))
    if container.embedded is not None:
        watch = EmbeddedStoreWatch(container.embedded, stopping)
        jobs.every(EMBEDDED_WATCH_SECONDS, "embedded-store-watch", watch.check)
    container.on_close(jobs.stop)
    return jobs


class EmbeddedStoreWatch:
    """Says once, plainly, that an embedded server has stopped (killed, crashed).

    Everything else then fails on its own (projector batches, commands; /readyz answers 503), each
    with its own error; this line names the cause and the remedy."""

    def __init__(self, stores: EmbeddedStores, stopping: Callable[[], bool] = lambda: False) -> None:
        self._stores = stores
        # While the gateway stops, its servers may go first (a terminal's Ctrl-C reaches them too).
        self._stopping = stopping
        self._reported: set[str] = set()

    async def check(self) -> list[str]:
        """The servers newly found stopped (each is logged once)."""
        if self._stopping():
            return []
        gone = [name for name in self._stores.stopped() if name not in self._reported]
        for name in gone:
            log.error(
                "the embedded %s has stopped; the gateway cannot work without it: "
                "stop the gateway and start it again",
                name,
                extra={"store": name},
            )
        self._reported.update(gone)
        return gone


def local_webhook_url(host: str, port: int) -> str:
    """This gateway's webhook endpoint as the in-process sandbox reaches it."""
    reachable = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in reachable:
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}/webhooks/payments"
