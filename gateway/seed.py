"""Demo data for ``make run``: loaded through the same command handlers as real writes."""

from __future__ import annotations

from gateway.bootstrap import Container


async def seed_if_empty(container: Container) -> bool:
    """Seed the demo catalog when the catalog is empty. False: nothing to seed yet."""
    del container
    return False
