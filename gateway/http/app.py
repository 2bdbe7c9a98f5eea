"""The HTTP application: GraphQL, health, metrics and (later) webhooks."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.schema.config import StrawberryConfig

from gateway.bootstrap.container import Container
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


def _routes(view: GraphQLView) -> list[Route | WebSocketRoute]:
    return [
        Route("/graphql", view),
        WebSocketRoute("/graphql", view),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/webhooks/payments", payment_webhook, methods=["POST"]),
        *ADMIN_ROUTES,
    ]


class GatewayApp(Starlette):
    """Starlette, with GraphQL over HTTP sent straight to its view.

    ``POST /graphql`` is nearly every request, and Starlette's error and exception middleware,
    router and route wrappers cost it about 4 % of a purchase's CPU while doing nothing for it:
    the view answers every failure itself (a masked 500 included). The middleware (ours, and any
    added with ``add_middleware``) is built once, around a dispatch that sends exactly that path
    to the view and everything else (the websocket on ``/graphql`` too) through Starlette's own
    stack and router, as before.
    """

    def __init__(self, view: GraphQLView) -> None:
        super().__init__(routes=_routes(view))
        self._view = view
        self._middleware: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []
        self._stack: ASGIApp | None = None
        self.add_middleware(RequestIdMiddleware)

    def add_middleware(self, middleware_class: Any, *args: Any, **kwargs: Any) -> None:
        """As Starlette's: the last added is the outermost; none after the first request."""
        if self._stack is not None:
            raise RuntimeError("Cannot add middleware after an application has started")
        self._middleware.insert(0, (middleware_class, args, kwargs))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._stack is None:
            app: ASGIApp = self._dispatch
            for middleware_class, args, kwargs in reversed(self._middleware):
                app = middleware_class(app, *args, **kwargs)
            self._stack = app
        scope["app"] = self  # what Starlette sets: the view finds the container through it
        await self._stack(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/graphql" and not scope.get("root_path"):
            await self._view(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def build_app(container: Container) -> Starlette:
    """An app over an already built container (tests, and processes that manage it themselves)."""
    app = GatewayApp(GraphQLView(build_schema(), container.settings))
    app.state.container = container
    return app
