"""GraphQL over HTTP: media types, CSRF prevention, body limits and request parameters.

Follows the GraphQL-over-HTTP spec: ``application/graphql-response+json``
gets the spec's status codes, ``application/json`` (the legacy media type,
also chosen for ``*/*`` or no ``Accept``) gets 200 for well-formed requests and
400 for invalid request parameters (a missing or mistyped ``query`` and the like).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request

from gateway.edge.errors import GatewayError

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# Content types a browser may send cross-origin without a CORS preflight.
SIMPLE_CONTENT_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
# Any of these headers makes a browser preflight the request, so a cross-site page cannot forge it.
PREFLIGHT_HEADERS = ("x-apollo-operation-name", "apollo-require-preflight", "graphql-require-preflight")


class HttpError(GatewayError):
    """A request the server refuses before GraphQL sees it, with its HTTP status."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None, **ext: Any
    ) -> None:
        super().__init__(code, message, **ext)
        self.status = status
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class GraphQLParams:
    query: str | None = None
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] | None = None
    document_id: str | None = None


def media_type(value: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = value.partition(";")
    params = {}
    for part in rest.split(";"):
        name, sep, val = part.partition("=")
        if sep:
            params[name.strip().lower()] = val.strip().strip('"')
    return kind.strip().lower(), params


def negotiate(accept: str | None) -> str | None:
    """The response media type for an ``Accept`` header, or None when nothing acceptable is offered."""
    if not accept or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for item in accept.split(","):
        kind, params = media_type(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality <= 0:
            continue
        # On equal quality, prefer the exact modern type, then JSON; wildcards map to JSON.
        if kind == GRAPHQL_RESPONSE:
            candidate = (quality, 2, GRAPHQL_RESPONSE)
        elif kind in {JSON, "application/*", "*/*"}:
            candidate = (quality, 1, JSON)
        else:
            continue
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else None


def csrf_blocked(request: Request) -> bool:
    """True for a request a cross-site page could send without a preflight.

    POST needs a non-simple content type (JSON) or a preflight header. GET is
    refused only when it carries a simple content type without such a
    header: plain GETs run queries only (never mutations) and the API's
    credentials are headers, never cookies a browser would attach.
    """
    headers = request.headers
    if any(headers.get(name) for name in PREFLIGHT_HEADERS):
        return False
    raw = headers.get("content-type")
    if raw is None:
        return request.method == "POST"
    return media_type(raw)[0] in SIMPLE_CONTENT_TYPES


def check_content_type(request: Request) -> None:
    kind, params = media_type(request.headers.get("content-type", ""))
    if kind != JSON:
        raise HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "POST bodies must be application/json")
    if params.get("charset", "utf-8").lower() not in {"utf-8", "utf8"}:
        raise HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "only the utf-8 charset is supported")


def too_large(maximum: int) -> HttpError:
    return HttpError(
        413,
        "OPERATION_LIMIT_EXCEEDED",
        f"The request exceeds the bodySize limit of {maximum} bytes",
        limit="bodySize",
        maximum=maximum,
    )


async def read_body(request: Request, maximum: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > maximum:
        raise too_large(maximum)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > maximum:
            raise too_large(maximum)
        chunks.append(chunk)
    return b"".join(chunks)


def bad_request(message: str) -> HttpError:
    return HttpError(400, "BAD_REQUEST", message)


def loads(raw: str | bytes) -> Any:
    """JSON text to Python values, strictly: a lone UTF-16 surrogate escape (which no store can
    take), NaN and out-of-range numbers are refused as malformed, as ``json.JSONDecodeError``."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # msgspec names a lone surrogate only sometimes ("truncated" when a quote follows it).
        reason = "a lone UTF-16 surrogate escape" if _lone_surrogate(raw) else str(exc)
        raise json.JSONDecodeError(reason, "", 0) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None
    except UnicodeEncodeError:  # a str that holds a surrogate itself
        raise json.JSONDecodeError("a lone UTF-16 surrogate", "", 0) from None


def _lone_surrogate(raw: str | bytes) -> bool:
    """Whether the standard library, which takes lone surrogates, reads one in ``raw`` (only
    asked about text msgspec refused, to name the reason)."""
    try:
        pending: list[Any] = [json.loads(raw)]
    except (ValueError, RecursionError):
        return False
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and any("\ud800" <= char <= "\udfff" for char in value):
            return True
    return False


def decode_json(raw: str | bytes, what: str) -> Any:
    try:
        return loads(raw)
    except json.JSONDecodeError as exc:
        raise bad_request(f"{what} is not valid JSON: {exc.msg}") from None


# Responses are encoded by msgspec (compact, UTF-8): a page of products is a few hundred
# values, which the standard library encodes at several times the CPU.
_RESPONSE_JSON = msgspec.json.Encoder(enc_hook=str)


def encode_json(body: Any) -> bytes:
    """A response body as compact JSON."""
    try:
        return _RESPONSE_JSON.encode(body)
    except UnicodeEncodeError:
        # A lone surrogate (json.loads accepts one in a request, and a message may echo it)
        # cannot be UTF-8: the standard library writes it as an escape instead.
        return json.dumps(body, separators=(",", ":"), default=str).encode()


def params_from_query_string(query: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {k: query[k] for k in ("query", "operationName", "documentId") if k in query}
    for name in ("variables", "extensions"):
        if query.get(name):
            data[name] = decode_json(query[name], name)
    return data


# A NUL character in a document, raw or as a string escape (\u0000, \u{0}).
_NUL_IN_DOCUMENT = re.compile(r"\x00|\\u0000|\\u\{0+\}")


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def graphql_params(data: object, *, nul_free: bool = False) -> GraphQLParams:
    """``nul_free``: the caller knows no string in ``data`` holds a NUL (the variables need no walk)."""
    if not isinstance(data, dict):
        raise bad_request("A GraphQL request must be a JSON object")

    def typed(name: str, kind: type) -> Any:
        value = data.get(name)
        if value is not None and not isinstance(value, kind):
            raise bad_request(f"'{name}' must be {'a string' if kind is str else 'an object'}")
        return value

    params = GraphQLParams(
        query=typed("query", str),
        variables=typed("variables", dict),
        operation_name=typed("operationName", str) or None,
        extensions=typed("extensions", dict),
        document_id=typed("documentId", str) or None,
    )
    if (not nul_free and _has_nul(params.variables)) or (
        params.query is not None and _NUL_IN_DOCUMENT.search(params.query)
    ):
        # PostgreSQL text cannot hold NUL: refused here as input, never a store error later.
        raise HttpError(400, "BAD_USER_INPUT", "Strings may not contain NUL (U+0000) characters")
    # A request naming no document is invalid in either media type (HTTP 400, even for application/json).
    if (
        params.query is None
        and params.document_id is None
        and "persistedQuery" not in (params.extensions or {})
    ):
        raise bad_request("No GraphQL query found in the request")
    return params
