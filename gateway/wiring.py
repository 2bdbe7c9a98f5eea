"""Registers each domain's command handlers and projections on a container.

Both process roots (``serve`` and ``project``) and the tests call this, so
they all run the same handlers and read models.
"""

from __future__ import annotations

from gateway.bootstrap import Container
from projections.runner import RunnerConfig


def wire(container: Container, runner_config: RunnerConfig | None = None) -> None:
    """Register every domain. Each domain adds itself here as it is built."""
    del runner_config  # used once the first read model is registered


async def seed_demo_data(container: Container) -> bool:
    """Load the demo catalog on first start; False when there is nothing to seed yet."""
    del container
    return False
