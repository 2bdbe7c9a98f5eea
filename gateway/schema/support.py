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
    raise not_implemented("projections")


async def resolve_projection_rebuild(info: Info, name: str) -> ProjectionRebuildPayload:
    raise not_implemented("projectionRebuild")
