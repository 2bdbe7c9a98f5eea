"""Support timeline and read-model operations types and resolvers."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import cast

import strawberry
from strawberry.scalars import JSON

from gateway.edge.context import Info
from gateway.schema.common import Freshness, PageInfo, UserError, UserErrorCode
from gateway.schema.cursors import check_first, decode_cursor, encode_cursor, not_a_cursor
from gateway.schema.ids import global_id
from gateway.schema.list_sizes import bounded
from gateway.schema.scalars import Position
from projections.lease import rebuild_key
from projections.rebuild import NotRebuildable, RebuildInProgress
from queries.projection_status import ProjectionStatusView
from queries.timeline import TimelineEntryView

TIMELINE_MAX_FIRST = 200


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
    position: Position
    data: JSON | None

    @classmethod
    def of(cls, view: TimelineEntryView, show_data: bool) -> TimelineEntry:
        return cls(
            id=strawberry.ID(global_id("TimelineEntry", str(view.position))),
            at=view.at,
            kind=TimelineEntryKind(view.kind),
            type=view.type,
            summary=view.summary,
            order_id=None if view.order_id is None else strawberry.ID(global_id("Order", view.order_id)),
            cart_id=None if view.cart_id is None else strawberry.ID(global_id("Cart", view.cart_id)),
            position=Position(view.position),
            data=cast(JSON, view.data) if show_data else None,
        )


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
    owner: str | None = strawberry.field(
        default=None,
        description=(
            "The process applying this projection now (host:pid and role), which holds its lease; "
            "null while no process does (standbys take over within seconds)."
        ),
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
            owner=view.owner,
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
    ctx = info.context
    ctx.principal.require("support", "admin")
    limit = check_first(first, 50, TIMELINE_MAX_FIRST)
    before = None if after is None else decode_cursor("timeline", after)
    if before is not None and not isinstance(before, int):
        raise not_a_cursor()
    if consistent_with is not None:
        await ctx.container.freshness.wait_for(
            "timeline", consistent_with, ctx.container.settings.read_wait_seconds
        )
    page = await ctx.services.timeline.for_customer(
        str(customer_id),
        kinds=[k.value for k in kinds] if kinds else None,
        first=limit,
        before_position=before,
    )
    freshness = await ctx.container.freshness.freshness("timeline")
    edges = [
        TimelineEdge(
            cursor=encode_cursor("timeline", e.position), node=TimelineEntry.of(e, ctx.principal.staff)
        )
        for e in page.entries
    ]
    return TimelineConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        freshness=Freshness.of(freshness),
    )


async def resolve_projections(info: Info) -> list[ProjectionStatus]:
    info.context.principal.require("support", "admin")
    container = info.context.container
    service = container.services.projection_status
    statuses = []
    for runner in bounded("Query", "projections", container.runners):
        progress = container.rebuilder.progress(runner.name)
        fraction = progress.fraction if progress is not None and not progress.done else None
        view = await service.status(runner.name, runner.projection.store, fraction)
        statuses.append(ProjectionStatus.of(view))
    return statuses


async def resolve_projection_rebuild(info: Info, name: str) -> ProjectionRebuildPayload:
    info.context.principal.require("admin")
    container = info.context.container
    try:
        runner = container.runner(name)
    except LookupError:
        return _rebuild_refused(f"there is no projection named {name!r}", UserErrorCode.NOT_FOUND)
    local = container.rebuilder.progress(name)
    if (local is None or local.done) and await container.leases.taken_elsewhere(rebuild_key(name)):
        return _rebuild_refused(f"a rebuild of {name} is already running in another process; wait for it")
    try:
        container.rebuilder.start(runner)
    except RebuildInProgress:
        return _rebuild_refused(f"a rebuild of {name} is already running; wait for it to finish")
    except NotRebuildable:
        return _rebuild_refused(f"the {name} projection cannot be rebuilt")
    freshness = await container.freshness.freshness(name)
    status = ProjectionStatus(
        name=name,
        store=runner.projection.store,
        state=ProjectionState.REBUILDING,
        freshness=Freshness.of(freshness),
        last_error=None,
    )
    return ProjectionRebuildPayload(projection=status, user_errors=[])


def _rebuild_refused(
    message: str, code: UserErrorCode = UserErrorCode.INVALID_INPUT
) -> ProjectionRebuildPayload:
    return ProjectionRebuildPayload(
        projection=None, user_errors=[UserError(field=["name"], message=message, code=code)]
    )
