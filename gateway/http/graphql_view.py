"""The /graphql endpoint: GraphQL over HTTP through the edge pipeline, and graphql-transport-ws.

HTTP order: Accept negotiation, CSRF prevention, content type, body size,
JSON, credentials (JWT or API key), then each operation through
``Pipeline.run``. WebSocket operations take the same steps (``ws_operations``).
A GET of a persisted document is cacheable (``conditional``): it gets ``Cache-Control``,
``ETag`` and ``Vary``, and a conditional GET whose ETag holds gets 304.
"""

from __future__ import annotations

import json
import logging
import math

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import Settings
from gateway.edge.auth import ANONYMOUS
from gateway.edge.clients import authenticate
from gateway.edge.context import RequestContext
from gateway.edge.errors import INTERNAL_MESSAGE, GatewayError, error_body
from gateway.edge.execution import GatewayContext, GatewaySchema
from gateway.edge.http_cache import HttpCache
from gateway.edge.pipeline import Caller, Outcome, Pipeline, count_rejection
from gateway.edge.services import EdgeServices
from gateway.http.conditional import add_cache_headers, cache_request, not_modified
from gateway.http.protocol import (
    GRAPHQL_RESPONSE,
    JSON,
    HttpError,
    bad_request,
    check_content_type,
    csrf_blocked,
    decode_json,
    encode_json,
    graphql_params,
    loads,
    negotiate,
    params_from_query_string,
    read_body,
    too_large,
)
from gateway.http.ws_operations import EdgeTransportWSHandler, MessageTooLarge, SocketCounts, peer_address
from gateway.http.ws_operations import too_large as message_too_large

log = logging.getLogger(__name__)
CSRF_MESSAGE = (
    "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). "
    "Send Content-Type: application/json or a non-empty X-Apollo-Operation-Name, "
    "Apollo-Require-Preflight or GraphQL-Require-Preflight header."
)


# HEAD as GET; any other method is answered here (405 in the GraphQL error shape), not by routing.
_METHODS = frozenset({"GET", "HEAD", "POST"})


class GraphQLView(GraphQL[RequestContext, None]):
    # Every WebSocket operation through the edge (see ws_operations); the legacy graphql-ws
    # protocol is not offered.
    graphql_transport_ws_handler_class = EdgeTransportWSHandler

    def __init__(self, schema: GatewaySchema, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide=None if settings.production else "graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=settings.websocket.max_operations_per_socket,
        )
        self.settings = settings
        self.pipeline = Pipeline(schema, settings)
        self.sockets = SocketCounts()
        # Built with the first request: it needs the app's container (its pool and watcher).
        self.http_cache: HttpCache | None = None

    def decode_json(self, data: str | bytes) -> object:
        """WebSocket messages (HTTP bodies are read by ``_request_items``), under the size limit."""
        if message_too_large(data, self.settings.websocket.max_message_bytes):
            raise MessageTooLarge
        return loads(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self._handle(request)
        except Exception:
            request_id = scope.get("state", {}).get("request_id")
            log.exception("unexpected error at the GraphQL edge", extra={"request_id": request_id})
            body = error_body("INTERNAL_SERVER_ERROR", INTERNAL_MESSAGE, request_id)
            response = Response(json.dumps(body), 500, media_type=JSON)
        await response(scope, receive, send)

    # ------------------------------------------------------------ HTTP

    async def _handle(self, request: Request) -> Response:
        state = request.scope.setdefault("state", {})
        request_id: str = state.get("request_id", "")
        media = JSON
        if self._wants_ide(request):
            return HTMLResponse(self.graphql_ide_html)
        container: Container = request.app.state.container
        services = container.services.edge
        try:
            media = negotiate(request.headers.get("accept")) or _not_acceptable()
            if request.method not in _METHODS:
                raise HttpError(
                    405, "METHOD_NOT_ALLOWED", "GraphQL takes GET or POST", {"Allow": "GET, POST"}
                )
            if csrf_blocked(request):
                raise HttpError(400, "BAD_REQUEST", CSRF_MESSAGE)
            items, nul_free = await self._request_items(request)
            batch = isinstance(items, list)
            params = [
                graphql_params(item, nul_free=nul_free)
                for item in (items if isinstance(items, list) else [items])
            ]
        except HttpError as exc:
            state["outcome"] = f"error:{exc.code}"
            count_rejection(exc)
            body = error_body(exc.code, exc.message, request_id or None, **exc.extensions)
            return self._respond([Outcome(body, error=exc)], media, batch=False, method=request.method)
        try:
            caller = await self._caller(request, services)
        except GatewayError as exc:
            caller = Caller(ANONYMOUS, None, peer_address(request))
            outcome = await self.pipeline.failure(exc, caller, services, request_id)
            state["outcome"] = f"error:{exc.code}"
            return self._respond([outcome], media, batch=False, method=request.method)
        state["client"] = caller.client.name if caller.client else caller.principal.subject
        cache = cache_request(request, params, batch=batch, http=self._http_cache(container))
        outcomes, sub_responses = [], []
        for param in params:
            sub_response = Response()
            context = self._context(request, caller, container, sub_response)
            outcomes.append(await self.pipeline.run(param, caller, services, context, request.method, cache))
            sub_responses.append(sub_response)
        state["operation_name"] = outcomes[0].operation_name
        if outcomes[0].not_modified:
            state["outcome"] = "not-modified"
            return not_modified(outcomes[0])
        codes = sorted({code for outcome in outcomes for code in outcome.codes})
        state["outcome"] = "error:" + ",".join(codes) if codes else "ok"
        response = self._respond(outcomes, media, batch=batch, method=request.method)
        # Headers (cookies, cache hints) that resolvers set on their sub-response.
        for sub_response in sub_responses:
            for name, value in sub_response.headers.items():
                if name not in {"content-length", "content-type"}:
                    response.headers.append(name, value)
        if any(sub.headers.get("set-cookie") for sub in sub_responses):
            add_cache_headers(response, outcomes, method=request.method)
        return response

    def _http_cache(self, container: Container) -> HttpCache:
        if self.http_cache is None:
            versions = container.services.read_model_versions
            self.http_cache = HttpCache(self.pipeline.schema._schema, versions)
        return self.http_cache

    def _wants_ide(self, request: Request) -> bool:
        return (
            self.graphql_ide is not None
            and request.method == "GET"
            and not request.query_params
            and "text/html" in request.headers.get("accept", "")
        )

    async def _request_items(self, request: Request) -> tuple[object, bool]:
        """The request's JSON, and whether it is known to hold no NUL character: JSON text can
        carry one only as the escape ``\\u0000`` (a raw one is malformed), so a body without
        that escape needs no walk through its values to look for one."""
        maximum = self.settings.edge.max_body_bytes
        nul_free = False
        if request.method == "POST":
            check_content_type(request)
            body = await read_body(request, maximum)
            data = decode_json(body, "The request body")
            nul_free = b"\\u0000" not in body
        else:
            if len(request.scope.get("query_string", b"")) > maximum:
                raise too_large(maximum)
            data = params_from_query_string(request.query_params)
        if isinstance(data, list):
            limit = self.settings.edge.max_batch_size
            if not data:
                raise bad_request("An empty batch has nothing to run")
            if len(data) > limit:
                raise HttpError(
                    400,
                    "OPERATION_LIMIT_EXCEEDED",
                    f"Batched requests are limited to {limit} operations"
                    if limit
                    else "Batched requests are not enabled",
                    limit="batchSize",
                    maximum=limit,
                )
        return data, nul_free

    async def _caller(self, request: Request, services: EdgeServices) -> Caller:
        principal, client = await authenticate(
            request.app.state.container.authenticator,
            services.clients,
            authorization=request.headers.get("authorization"),
            api_key=request.headers.get("x-api-key"),
        )
        return Caller(principal, client, peer_address(request))

    def _context(
        self, request: Request, caller: Caller, container: Container, sub_response: Response
    ) -> GatewayContext:
        state = request.scope["state"]
        return GatewayContext(
            request=request,
            response=sub_response,
            principal=caller.principal,
            request_id=state.get("request_id", ""),
            correlation_id=state.get("correlation_id", ""),
            container=container,
            checks=self.pipeline,
        )

    def _respond(self, outcomes: list[Outcome], media: str, *, batch: bool, method: str) -> Response:
        headers: dict[str, str] = {}
        status = 200
        if not batch:
            outcome = outcomes[0]
            error = outcome.error
            if isinstance(error, HttpError):
                status, headers = error.status, error.headers
            elif error is not None and error.code == "UNAUTHENTICATED":
                status = 401
            elif error is not None and error.code == "RATE_LIMITED":
                status = 429
                retry = error.extensions.get("retryAfterSeconds")
                if retry is not None:
                    headers["Retry-After"] = str(math.ceil(retry))
            elif media == GRAPHQL_RESPONSE and "data" not in outcome.body:
                status = 400
        body = [o.body for o in outcomes] if batch else outcomes[0].body
        content = encode_json(body)
        content_type = f"{media}; charset=utf-8" if media == GRAPHQL_RESPONSE else media
        response = Response(content, status, headers=headers, media_type=content_type)
        add_cache_headers(response, outcomes, method=method)
        return response

    # ------------------------------------------------------------ WebSocket

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        state = request.scope.get("state", {})
        return GatewayContext(
            request=request,
            response=response,
            principal=state.get("principal", ANONYMOUS),
            request_id=state.get("request_id", ""),
            correlation_id=state.get("correlation_id", ""),
            container=request.app.state.container,
            checks=self.pipeline,
        )


def _not_acceptable() -> str:
    raise HttpError(406, "NOT_ACCEPTABLE", f"Supported response types: {GRAPHQL_RESPONSE}, {JSON}")


__all__ = ["GatewaySchema", "GraphQLView", "StrawberryGraphQLError"]
