"""HTTP caching of /graphql: which requests may be cached, and the headers of their answers.

Only a GET of a persisted document (APQ hash or trusted ``documentId``) may be cached: its URL
names the operation. Every other answer, POSTs and batches included, is ``no-store``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.edge.etag import VARY, cache_control
from gateway.edge.http_cache import CacheRequest, HttpCache
from gateway.edge.pipeline import Outcome
from gateway.http.protocol import GraphQLParams


def is_persisted(params: GraphQLParams) -> bool:
    extensions = params.extensions or {}
    return params.document_id is not None or isinstance(extensions.get("persistedQuery"), dict)


def cache_request(
    request: Request, params: list[GraphQLParams], *, batch: bool, http: HttpCache
) -> CacheRequest | None:
    if request.method != "GET" or batch or len(params) != 1 or not is_persisted(params[0]):
        return None
    return CacheRequest(http, request.headers.get("if-none-match"))


def not_modified(outcome: Outcome) -> Response:
    """304: the validator and the caching headers a cache refreshes its stored copy with."""
    assert outcome.cache is not None and outcome.cache.etag is not None
    headers = {
        "ETag": outcome.cache.etag,
        "Cache-Control": cache_control(outcome.cache.policy),
        "Vary": VARY,
    }
    return Response(status_code=304, headers=headers)


def add_cache_headers(response: Response, outcomes: list[Outcome], *, method: str) -> None:
    decision = outcomes[0].cache if len(outcomes) == 1 else None
    cacheable = (
        decision is not None
        and decision.etag is not None
        and response.status_code == 200
        and "set-cookie" not in response.headers
    )
    if cacheable and decision is not None and decision.etag is not None:
        response.headers["ETag"] = decision.etag
        response.headers["Cache-Control"] = cache_control(decision.policy)
    else:
        response.headers["Cache-Control"] = "no-store"
        # A validator on an answer no cache may keep would let a later 304 revive it.
        if "etag" in response.headers:
            del response.headers["etag"]
    if method == "GET":
        response.headers["Vary"] = VARY
