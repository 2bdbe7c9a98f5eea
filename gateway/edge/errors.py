"""Coded GraphQL errors and the masking of unexpected ones."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

from queries.freshness import StaleRead

log = logging.getLogger("gateway.errors")

INTERNAL_MESSAGE = "Internal server error"


class GatewayError(Exception):
    """An error a client may see, with ``extensions.code`` from the contract."""

    def __init__(self, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions = extensions


class InvalidInputValue(ValueError):
    """A scalar cannot take the value a caller sent (reported as BAD_USER_INPUT, with its location)."""


def unauthenticated(message: str = "Authentication required") -> GatewayError:
    return GatewayError("UNAUTHENTICATED", message)


def forbidden(message: str = "You are not allowed to do this") -> GatewayError:
    return GatewayError("FORBIDDEN", message)


def bad_user_input(message: str, **extensions: Any) -> GatewayError:
    return GatewayError("BAD_USER_INPUT", message, **extensions)


def format_error(error: GraphQLError, request_id: str | None) -> dict[str, Any]:
    """The client-facing form of one error; unexpected ones are masked and logged."""
    original = error.original_error
    base: dict[str, Any] = {"message": error.message}
    if error.locations:
        base["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        base["path"] = list(error.path)
    if isinstance(original, GatewayError):
        base["extensions"] = {"code": original.code, **original.extensions}
    elif isinstance(original, StaleRead):
        base["extensions"] = {
            "code": "STALE_READ",
            "projection": original.projection,
            "position": str(original.position),
        }
    elif original is None:
        code = (error.extensions or {}).get("code") or "GRAPHQL_VALIDATION_FAILED"
        base["extensions"] = {**(error.extensions or {}), "code": code}
    else:
        log.error(
            "unexpected error in resolver",
            exc_info=(type(original), original, original.__traceback__),
            extra={"request_id": request_id, "path": list(error.path or [])},
        )
        base["message"] = INTERNAL_MESSAGE
        base["extensions"] = {"code": "INTERNAL_SERVER_ERROR"}
    if request_id is not None:
        base["extensions"]["requestId"] = request_id
    return base


def error_body(code: str, message: str, request_id: str | None, **extensions: Any) -> dict[str, Any]:
    """A whole GraphQL response carrying one error, for failures before execution."""
    ext: dict[str, Any] = {"code": code, **extensions}
    if request_id is not None:
        ext["requestId"] = request_id
    return {"errors": [{"message": message, "extensions": ext}]}
