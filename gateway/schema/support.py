"""Support timeline and read-model operations types and resolvers."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from gateway.context import Info
from gateway.errors import not_implemented
from gateway.schema.common import Freshness, PageInfo, UserError
from gateway.schema.scalars import Position
from queries.projection_status import ProjectionStatusService, ProjectionStatusView


@strawberry.enum
class TimelineEntryKind(Enum):
    CART = "CART"
    ORDER = "ORDER"
    PAYMENT = "PAYMENT"
    INVENTORY = "INVENTORY"
    FULFILLMENT = "FULFILLMENT"
    ACCOUNT = "ACCOUNT"


@strawberry.type
class TimelineEntry:
    id: strawberry.ID
    at: datetime
    kind: TimelineEntryKind
    type: str
    summary: str
    order_id: strawberry.ID | None
    cart_id: strawberry.ID | None
    position: Position  # type: ignore[valid-type]
    data: JSON | None


@strawberry.type
class TimelineEdge:
    cursor: str
    node: TimelineEntry


@strawberry.type
class TimelineConnection:
    edges: list[TimelineEdge]
    page_info: PageInfo
    freshness: Freshness


@strawberry.enum
class ProjectionState(Enum):
    RUNNING = "RUNNING"
    CATCHING_UP = "CATCHING_UP"
    REBUILDING = "REBUILDING"
    STALLED = "STALLED"
    FAILED = "FAILED"


@strawberry.type
class ProjectionStatus:
    name: str
    store: str
    state: ProjectionState
    freshness: Freshness
    last_error: str | None
    rebuild_progress: float | None = strawberry.field(
        default=None, description="Share of the ledger a running rebuild has replayed (0..1)."
    )

    @classmethod
    def of(cls, view: ProjectionStatusView) -> ProjectionStatus:
        return cls(
            name=view.name,
            store=view.store,
            state=ProjectionState(view.state),
            freshness=Freshness.of(view.freshness),
            last_error=view.last_error,
            rebuild_progress=view.rebuild_progress,
        )


@strawberry.type
class ProjectionRebuildPayload:
    projection: ProjectionStatus | None
    user_errors: list[UserError]


async def resolve_customer_timeline(
    info: Info,
    customer_id: strawberry.ID,
    kinds: list[TimelineEntryKind] | None,
    first: int | None,
    after: str | None,
    consistent_with: int | None,
) -> TimelineConnection:
    raise not_implemented("customerTimeline")


async def resolve_projections(info: Info) -> list[ProjectionStatus]:
    info.context.principal.require("support", "admin")
    container = info.context.container
    service = container.get(ProjectionStatusService)
    statuses = []
    for runner in container.runners:
        progress = container.rebuilder.progress(runner.name)
        fraction = progress.fraction if progress is not None and not progress.done else None
        view = await service.status(runner.name, runner.projection.store, fraction)
        statuses.append(ProjectionStatus.of(view))
    return statuses


async def resolve_projection_rebuild(info: Info, name: str) -> ProjectionRebuildPayload:
    raise not_implemented("projectionRebuild")
