"""Wires the inventory domain: command handlers, projections and query services."""

from __future__ import annotations

from gateway.bootstrap import Container
from projections.runner import RunnerConfig


def wire_inventory(container: Container, runner_config: RunnerConfig | None) -> None:
    del container, runner_config  # nothing to wire until this domain lands
