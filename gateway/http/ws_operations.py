"""graphql-transport-ws through the edge: every operation takes the HTTP pipeline's steps.

Per socket: credentials from ``connection_init`` (or the handshake headers), a
cap on sockets per caller and on operations running at once, and a message
size limit. Per operation: credentials checked again (expiry, revocation),
persisted-only clients, limits, validation, cost charged to the caller's
budget, and a fresh context (DataLoaders) so reads never see another
operation's cache. Only subscriptions run here; queries and mutations are
served over HTTP (OPERATION_NOT_SUPPORTED).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, Protocol, cast

import jwt
from graphql import GraphQLError, GraphQLFormattedError
from starlette.requests import HTTPConnection
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    Message,
    SubscribeMessage,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import Settings
from gateway.edge.clients import authenticate
from gateway.edge.context import RequestContext
from gateway.edge.document_cache import PreparedDocument
from gateway.edge.errors import GatewayError, error_body, unauthenticated
from gateway.edge.execution import GatewayContext, client_error
from gateway.edge.pipeline import Caller, Pipeline
from gateway.http.protocol import GraphQLParams, graphql_params

log = logging.getLogger(__name__)

# graphql-transport-ws close codes (the protocol's, and 1009 from RFC 6455).
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429
CLOSE_MESSAGE_TOO_BIG = 1009


class MessageTooLarge(Exception):
    """A WebSocket message longer than ``WebSocketSettings.max_message_bytes``."""


class SocketCounts:
    """Open sockets per caller (budget owner) in this process."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def acquire(self, owner: str, limit: int) -> bool:
        if self._open.get(owner, 0) >= limit:
            return False
        self._open[owner] = self._open.get(owner, 0) + 1
        return True

    def release(self, owner: str) -> None:
        left = self._open.get(owner, 0) - 1
        if left > 0:
            self._open[owner] = left
        else:
            self._open.pop(owner, None)


class SocketHost(Protocol):
    """What the handler needs from the GraphQL view serving the socket."""

    pipeline: Pipeline
    settings: Settings
    sockets: SocketCounts


def coded(error: GatewayError, request_id: str | None) -> dict[str, Any]:
    body = error_body(error.code, error.message, request_id or None, **error.extensions)
    entry: dict[str, Any] = body["errors"][0]
    return entry


def peer_address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def error_message(operation_id: str, errors: list[dict[str, Any]]) -> ErrorMessage:
    return {"id": operation_id, "type": "error", "payload": cast(list[GraphQLFormattedError], errors)}


def _credentials(params: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """From the connection_init payload (browsers cannot set handshake headers), else the headers."""
    authorization = params.get("authorization") or params.get("Authorization")
    api_key = params.get("apiKey")
    if authorization is None and api_key is None:
        authorization, api_key = headers.get("authorization"), headers.get("x-api-key")
    if not isinstance(authorization, str | None) or not isinstance(api_key, str | None):
        raise unauthenticated("credentials must be strings")
    return authorization, api_key


def _token_expiry(authorization: str | None) -> float | None:
    """The ``exp`` of an already verified bearer token."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    claims = jwt.decode(token.strip(), options={"verify_signature": False})
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else None


class EdgeTransportWSHandler(BaseGraphQLTransportWSHandler[RequestContext, None]):
    _credentials: tuple[str | None, str | None] = (None, None)
    _owner: str | None = None
    _expiry_task: asyncio.Task[None] | None = None

    @property
    def host(self) -> SocketHost:
        return cast(SocketHost, self.view)

    @property
    def container(self) -> Container:
        return self.context.container

    # ------------------------------------------------------------ the socket

    async def handle(self) -> None:
        self.on_request_accepted()
        try:
            try:
                async for message in self.websocket.iter_json():
                    await self.handle_message(cast("Message", message))
            except NonTextMessageReceived:
                await self.handle_invalid_message("WebSocket message type must be text")
            except NonJsonMessageReceived:
                await self.handle_invalid_message("WebSocket message must be valid JSON")
            except MessageTooLarge:
                limit = self.host.settings.websocket.max_message_bytes
                await self.websocket.close(CLOSE_MESSAGE_TOO_BIG, f"Message larger than {limit} bytes")
        except WebSocketDisconnected:
            pass
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        if self._expiry_task is not None:
            self._expiry_task.cancel()
        await super().shutdown()
        if self._owner is not None:
            self.host.sockets.release(self._owner)
            self._owner = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.websocket.close(4400, "Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(CLOSE_TOO_MANY, "Too many initialisation requests")
            return
        self.connection_init_received = True
        context = self.context
        if isinstance(context, GatewayContext):
            context.connection_params = payload
        try:
            self._credentials = _credentials(payload, context.request.headers)
            caller = await self._caller()
        except GatewayError:
            await self.websocket.close(CLOSE_FORBIDDEN, "Forbidden")
            return
        pipeline = self.host.pipeline
        services = self.container.services.edge
        owner = pipeline.policy(pipeline.locate(caller, context.request.headers), services).key
        if not self.host.sockets.acquire(owner, self.host.settings.websocket.max_sockets_per_caller):
            await self.websocket.close(CLOSE_TOO_MANY, "Too many open sockets for this caller")
            return
        self._owner = owner
        context.principal = caller.principal
        expiry = _token_expiry(self._credentials[0])
        if expiry is not None:
            self._expiry_task = asyncio.create_task(self._close_on_expiry(expiry))
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True

    async def _caller(self) -> Caller:
        """The socket's caller, authenticated now: a token past its expiry or a revoked key fails."""
        authorization, api_key = self._credentials
        principal, client = await authenticate(
            self.container.authenticator,
            self.container.services.edge.clients,
            authorization=authorization,
            api_key=api_key,
        )
        return Caller(principal, client, peer_address(self.context.request))

    async def _close_on_expiry(self, expires_at: float) -> None:
        """A token's expiry ends the socket even while no operation sends anything."""
        leeway = self.container.authenticator.leeway
        await asyncio.sleep(max(0.0, expires_at + leeway - time.time()) + 0.05)
        await self._end_unauthenticated(unauthenticated("token expired"))

    async def _end_unauthenticated(
        self, error: GatewayError, operation: Operation[Any, Any] | None = None
    ) -> None:
        running = [operation] if operation is not None else []
        running += [op for op in list(self.operations.values()) if op is not operation]
        for op in running:
            with suppress(Exception):
                await op.send_operation_message(error_message(op.id, [coded(error, self.context.request_id)]))
        await self.websocket.close(CLOSE_UNAUTHORIZED, "Unauthorized")

    # ------------------------------------------------------------ operations

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged:
            await self.websocket.close(CLOSE_UNAUTHORIZED, "Unauthorized")
            return
        operation_id = message["id"]
        if operation_id in self.operations:
            await self.websocket.close(4409, f"Subscriber for {operation_id} already exists")
            return
        limit = self.host.settings.websocket.max_operations_per_socket
        try:
            if len(self.operations) >= limit:
                raise GatewayError(
                    "OPERATION_LIMIT_EXCEEDED",
                    f"At most {limit} operations may run at once on one socket",
                    limit="socketOperations",
                    maximum=limit,
                )
            params = graphql_params(message.get("payload"))
        except GatewayError as exc:
            await self.send_message(error_message(operation_id, [coded(exc, self.context.request_id)]))
            return
        operation: Operation[RequestContext, None] = Operation(
            self, operation_id, params.query or "", params.variables, params.operation_name
        )
        operation.task = asyncio.create_task(self._run(operation, params))
        operation.task.add_done_callback(self._task_done)
        self.operations[operation_id] = operation

    async def _run(self, operation: Operation[RequestContext, None], params: GraphQLParams) -> None:
        request_id = self.context.request_id
        try:
            try:
                caller = await self._caller()
            except GatewayError as exc:
                await self._end_unauthenticated(exc, operation)
                return
            pipeline = self.host.pipeline
            services = self.container.services.edge
            try:
                admission = await pipeline.admit_subscription(
                    params, caller, services, self.context.request.headers
                )
            except GatewayError as exc:
                await self._send_errors(operation, [coded(exc, request_id)])
                return
            if admission.errors:
                await self._send_errors(
                    operation, [client_error(e, request_id, pipeline.production) for e in admission.errors]
                )
                return
            context = self._operation_context(caller, admission.prepared)
            source = await self.schema.stream(
                admission.text,
                variable_values=params.variables,
                context_value=context,
                root_value=self.root_value,
                operation_name=params.operation_name,
            )
            async with aclosing(source):
                async for result in source:
                    if isinstance(result, PreExecutionError):
                        await operation.send_initial_errors(list(result.errors or ()))
                        return
                    if not isinstance(result, ExecutionResult):
                        await operation.send_initial_errors(
                            [GraphQLError("Incremental delivery is not supported over graphql-transport-ws")]
                        )
                        return
                    try:
                        await self._caller()
                    except GatewayError as exc:
                        await self._end_unauthenticated(exc, operation)
                        return
                    await operation.send_next(result)
                    # The next event resolves with the same context: its reads start from fresh loaders.
                    context.loaders.clear()
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)

    async def _send_errors(
        self, operation: Operation[RequestContext, None], errors: list[dict[str, Any]]
    ) -> None:
        await operation.send_operation_message(error_message(operation.id, errors))

    def _operation_context(self, caller: Caller, prepared: PreparedDocument) -> GatewayContext:
        """A fresh context per operation: its own DataLoaders, the caller as authenticated just now."""
        socket = self.context
        return GatewayContext(
            request=socket.request,
            response=socket.response,
            principal=caller.principal,
            request_id=socket.request_id,
            correlation_id=socket.correlation_id,
            container=socket.container,
            checks=self.host.pipeline,
            prepared=prepared,
            connection_params=getattr(socket, "connection_params", None),
        )


def too_large(data: str | bytes, maximum: int) -> bool:
    size = len(data) if isinstance(data, bytes) else len(data.encode())
    return size > maximum


__all__ = ["EdgeTransportWSHandler", "MessageTooLarge", "SocketCounts", "too_large"]
