"""Wires the orders domain: command handlers, projections and query services."""

from __future__ import annotations

from gateway.bootstrap import Container
from projections.runner import RunnerConfig


def wire_orders(container: Container, runner_config: RunnerConfig | None) -> None:
    del container, runner_config  # nothing to wire until the orders issue lands
