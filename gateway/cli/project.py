"""The projector worker (``commerce-gateway project``): every projection this process can reach,
each applied while this process holds its lease."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from gateway.bootstrap.settings import PROJECTORS_SHARED, Settings

if TYPE_CHECKING:
    from gateway.bootstrap.container import Container

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def running_projectors(settings: Settings) -> AsyncIterator[Container]:
    """A wired container whose projectors run until the block ends (then everything is closed).

    Beside an embedded gateway it borrows that gateway's servers (start it with
    ``RUN_PROJECTORS=private``); read models in this worker's own memory would be unreachable,
    so the gateway keeps those.
    """
    from gateway.bootstrap.heap import settle_startup_heap
    from gateway.cli.stores import wired_container
    from projections.lease import process_label

    async with wired_container(settings) as container:
        container.leases.holder = process_label("project")
        await container.start_projectors(scope=PROJECTORS_SHARED)
        settle_startup_heap()
        log.info(
            "projectors standing by for their leases",
            extra={"projections": [r.name for r in container.runners if r.running]},
        )
        yield container
        log.info("projector worker stopping: finishing batches, storing checkpoints, releasing leases")
    log.info("projector worker stopped")
