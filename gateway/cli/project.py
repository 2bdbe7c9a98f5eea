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
    """A wired container whose projectors run until the block ends (then everything is closed)."""
    from gateway.bootstrap.container import build_container
    from gateway.bootstrap.wiring import wire
    from gateway.cli.running import borrowed, running_gateway
    from projections.lease import process_label

    gateway = running_gateway(settings)
    if gateway is not None:
        # Embedded mode: the stores are the serving gateway's (start it with RUN_PROJECTORS=private).
        settings = borrowed(settings, gateway)
    container = await build_container(settings)
    container.leases.holder = process_label("project")
    try:
        wire(container)
        # Read models in this worker's own memory would be unreachable: the gateway keeps those.
        await container.start_projectors(scope=PROJECTORS_SHARED)
        log.info(
            "projectors standing by for their leases",
            extra={"projections": [r.name for r in container.runners if r.running]},
        )
        yield container
        log.info("projector worker stopping: finishing batches, storing checkpoints, releasing leases")
    finally:
        await container.close()
    log.info("projector worker stopped")
