"""The /graphql endpoint: Strawberry's HTTP handling plus auth, error masking and ids."""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema import Schema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionContext, ExecutionResult

from gateway.auth import ANONYMOUS, Principal
from gateway.context import RequestContext
from gateway.errors import GatewayError, error_body, format_error


class GatewaySchema(Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are formatted (and unexpected ones logged) in GraphQLView.process_result."""


class GraphQLView(GraphQL[RequestContext, None]):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        request_id = scope.get("state", {}).get("request_id")
        try:
            scope["state"]["principal"] = self._authenticate(request)
            response = await self.run(request)
        except GatewayError as exc:
            status = 401 if exc.code == "UNAUTHENTICATED" else 403 if exc.code == "FORBIDDEN" else 400
            response = JSONResponse(error_body(exc.code, exc.message, request_id, **exc.extensions), status)
        except HTTPException as exc:
            response = self._http_error(request, exc, request_id)
        await response(scope, receive, send)

    def _authenticate(self, request: Request) -> Principal:
        container = request.app.state.container
        principal: Principal = container.authenticator.authenticate(request.headers.get("authorization"))
        return principal

    @staticmethod
    def _http_error(request: Request, exc: HTTPException, request_id: str | None) -> Response:
        headers: dict[str, str] = {}
        status = exc.status_code
        code = "BAD_REQUEST"
        if isinstance(exc.__cause__, InvalidOperationTypeError) and request.method == "GET":
            # GET is for queries only; say which method to use instead.
            status, code, headers["Allow"] = 405, "METHOD_NOT_ALLOWED", "POST"
        elif status == 405:
            code, headers["Allow"] = "METHOD_NOT_ALLOWED", "GET, POST"
        return JSONResponse(error_body(code, exc.reason, request_id), status, headers=headers)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        state = request.scope.get("state", {})
        return RequestContext(
            request=request,
            response=response if isinstance(response, Response | WebSocket) else None,
            principal=state.get("principal", ANONYMOUS),
            request_id=state.get("request_id", ""),
            correlation_id=state.get("correlation_id", ""),
            container=request.app.state.container,
        )

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        request_id = request.scope.get("state", {}).get("request_id")
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [format_error(e, request_id) for e in result.errors]
            codes = {e["extensions"]["code"] for e in body["errors"]}
            request.scope["state"]["outcome"] = "error:" + ",".join(sorted(codes))
        else:
            request.scope["state"]["outcome"] = "ok"
        if result.extensions:
            body["extensions"] = result.extensions
        return body  # type: ignore[return-value]

    def encode_json(self, data: object) -> str:
        return json.dumps(data, separators=(",", ":"), default=str)


__all__ = ["GatewaySchema", "GraphQLView", "StrawberryGraphQLError"]
