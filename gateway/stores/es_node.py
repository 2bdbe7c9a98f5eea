"""Elasticsearch transport node for the embedded search engine.

The official ES 9 client sends ``application/vnd.elasticsearch+json;
compatible-with=9``; the embedded OpenSearch-compatible engine (osmem) only
accepts plain ``application/json``. This node rewrites those two headers and
is used only for that engine; real Elasticsearch gets the stock node.
"""

from __future__ import annotations

from typing import Any

from elastic_transport import AiohttpHttpNode, HttpHeaders

_VENDOR_JSON = "vnd.elasticsearch+"


class PlainJsonNode(AiohttpHttpNode):
    async def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: Any = None,
    ) -> Any:
        if headers is not None:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value is not None and _VENDOR_JSON in value:
                    headers[name] = "application/x-ndjson" if "ndjson" in value else "application/json"
        return await super().perform_request(
            method, target, body=body, headers=headers, request_timeout=request_timeout
        )
