"""The HTTP application: GraphQL, health, metrics and (later) webhooks."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from strawberry.schema.config import StrawberryConfig

from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import Settings
from gateway.http.admin import ROUTES as ADMIN_ROUTES
from gateway.http.graphql_view import GatewaySchema, GraphQLView
from gateway.http.health import healthz, readyz
from gateway.http.metrics import metrics_endpoint
from gateway.http.middleware import RequestIdMiddleware
from gateway.http.webhooks import payment_webhook
from gateway.schema.root import Mutation, Query, Subscription, extra_types
from gateway.schema.scalars import SCALAR_MAP


def build_schema() -> GatewaySchema:
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=extra_types(),
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )


def _routes(settings: Settings) -> list[Route | WebSocketRoute]:
    view = GraphQLView(build_schema(), settings)
    return [
        Route("/graphql", view),
        WebSocketRoute("/graphql", view),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/webhooks/payments", payment_webhook, methods=["POST"]),
        *ADMIN_ROUTES,
    ]


def build_app(container: Container) -> Starlette:
    """An app over an already built container (tests, and processes that manage it themselves)."""
    app = Starlette(routes=_routes(container.settings))
    app.state.container = container
    app.add_middleware(RequestIdMiddleware)
    return app
