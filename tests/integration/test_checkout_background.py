"""The serving gateway's background jobs: payment reconciliation and the reservation sweeper."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text

from gateway.bootstrap.background import PeriodicJobs, start_background
from gateway.bootstrap.settings import Settings
from tests.support.checkout import PAYMENT_TIMEOUT, Shop


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(
        payment_timeout_seconds=PAYMENT_TIMEOUT,
        read_wait_seconds=5.0,
        reconcile_interval_seconds=0.2,
        reservation_sweep_seconds=0.1,
    )


async def test_jobs_settle_unknown_payments_and_release_expired_leases(shop: Shop) -> None:
    await shop.configure(webhooks_enabled=False)
    await shop.product("TEE", on_hand=3)
    pending = await shop.checkout(await shop.cart(("TEE", 1)), "silent", token="tok_timeout")
    abandoned_cart = await shop.checkout(await shop.cart(("TEE", 2)), "leased", token="tok_late_decline")
    assert await shop.stock("TEE") == (3, 3)
    jobs = await start_background(shop.container, webhook_url=None)
    assert sorted(jobs.names) == ["payment-reconcile", "reservation-sweep", "stock-rebalance"]
    try:
        # Reconciliation asks the provider (no webhook was sent) and settles both orders.
        await shop.status_becomes(pending["order"]["id"], "CONFIRMED", timeout=8)
        await shop.status_becomes(abandoned_cart["order"]["id"], "CANCELLED", timeout=8)
        assert await shop.stock("TEE") == (3, 1)
        # The sweeper releases leases that ran out.
        third = await shop.checkout(await shop.cart(("TEE", 1)), "third", token="tok_timeout")
        async with shop.container.engine.begin() as conn:
            await conn.execute(
                text("UPDATE inventory_reservations SET expires_at = now() WHERE status = 'active'")
            )

        async def released() -> bool:
            return await shop.stock("TEE") == (3, 1)

        await shop.eventually(released, timeout=3)
        # ... and the late success of that order takes the stock again.
        await shop.status_becomes(third["order"]["id"], "CONFIRMED", timeout=8)
        assert await shop.stock("TEE") == (3, 2)
    finally:
        await jobs.stop()


async def test_a_failing_job_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0
    third_run = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            third_run.set()
        if runs == 1:
            raise RuntimeError("store down")

    jobs = PeriodicJobs()
    with caplog.at_level(logging.ERROR, logger="gateway.background"):
        jobs.every(0.01, "flaky", flaky)
        await asyncio.wait_for(third_run.wait(), timeout=2)
        await jobs.stop()
    assert any(r.message == "background job failed" for r in caplog.records)
    stopped_at = runs
    await asyncio.sleep(0.05)  # five job intervals in which a job that outlived stop() would run
    assert runs == stopped_at


async def test_a_process_told_not_to_runs_no_periodic_jobs(shop: Shop) -> None:
    """``serve --workers``: only the first worker reconciles and sweeps (BACKGROUND_JOBS=0 elsewhere)."""
    container = shop.container
    settings = container.settings
    container.settings = settings.with_overrides(background_jobs=False)
    try:
        jobs = await start_background(container, webhook_url=None)
        assert jobs.names == []
        await jobs.stop()
    finally:
        container.settings = settings
