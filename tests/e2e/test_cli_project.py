"""``commerce-gateway project``: projectors in their own process, reads here woken by NOTIFY."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from asyncio.subprocess import PIPE, STDOUT

from gateway.bootstrap.container import Container
from tests.support.order_ledger import append
from tests.support.orders import new_order_id, placed
from tests.support.waiting import read_model_reaches


async def test_projector_process_applies_events_and_wakes_readers_elsewhere(container: Container) -> None:
    settings = container.settings
    assert settings.database_url and settings.redis_url and settings.elasticsearch_url
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        REDIS_KEY_PREFIX=settings.redis_prefix,
        ELASTICSEARCH_URL=settings.elasticsearch_url,
        ELASTICSEARCH_IN_MEMORY="1" if settings.search_in_memory else "0",
        ELASTICSEARCH_INDEX_PREFIX=settings.index_prefix,
        MONGODB_URL=settings.mongodb_url or "mongomock://",
        MONGODB_DATABASE=settings.mongodb_database,
        MIGRATE_ON_START="0",
        LOG_LEVEL="WARNING",
    )
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "project", env=env, stdout=PIPE, stderr=STDOUT
    )
    try:
        order_id = new_order_id()
        (event,) = await append(container.engine, order_id, placed(order_id, "cust-p"))
        # Nothing runs projectors in this process: only the worker's checkpoint NOTIFY can wake us.
        assert not any(runner.running for runner in container.runners)
        for projection in ("orders", "timeline"):
            await read_model_reaches(container.freshness, projection, event.position, 60)
        fresh = await container.freshness.freshness("orders")
        assert fresh.position >= event.position
    finally:
        worker.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(worker.communicate(), 30))[0].decode()
    assert worker.returncode == 0, output
