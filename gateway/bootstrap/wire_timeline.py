"""Wires the support timeline: its projection and query service."""

from __future__ import annotations

from gateway.bootstrap.container import Container
from projections.runner import RunnerConfig
from projections.timeline.projector import TimelineProjection
from queries.timeline import TimelineQueries


def wire_timeline(container: Container, runner_config: RunnerConfig | None) -> None:
    container.add_projections([TimelineProjection(container.engine)], runner_config)
    container.provide(TimelineQueries(container.engine))
