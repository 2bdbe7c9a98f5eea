"""Request and correlation ids on every HTTP request, and one log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.bootstrap.logging import correlation_id_var, request_id_var
from gateway.http.metrics import observe_request

log = logging.getLogger("gateway.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text = str(value.decode("latin-1"))
            return text if _SAFE_ID.match(text) else None
    return None


def _route_label(scope: Scope) -> str:
    # Bounded label set: GraphQL requests get their operation name from the view.
    path = str(scope.get("path", ""))
    return path if path in {"/graphql", "/healthz", "/readyz", "/metrics", "/webhooks/payments"} else "other"


class RequestIdMiddleware:
    """Accepts a well-formed X-Request-Id (or makes one) and returns it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        correlation_id = _header(scope, b"x-correlation-id") or request_id
        scope.setdefault("state", {})
        scope["state"]["request_id"] = request_id
        scope["state"]["correlation_id"] = correlation_id
        tokens = (request_id_var.set(request_id), correlation_id_var.set(correlation_id))
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette's error middleware answers a route's failure with a masked 500, then
            # raises it to the server, whose log line would come after the ids were reset.
            log.exception(
                "request failed", extra={"request_id": request_id, "correlation_id": correlation_id}
            )
            raise
        finally:
            if scope["type"] == "http":
                elapsed = time.perf_counter() - started
                state = scope["state"]
                operation = state.get("operation_name") or _route_label(scope)
                outcome = state.get("outcome") or ("ok" if status < 400 else f"http_{status}")
                observe_request(operation, outcome, elapsed)
                log.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "operation": operation,
                        "outcome": outcome,
                        "client": state.get("client"),
                        "request_id": request_id,
                        "correlation_id": correlation_id,
                    },
                )
            request_id_var.reset(tokens[0])
            correlation_id_var.reset(tokens[1])
