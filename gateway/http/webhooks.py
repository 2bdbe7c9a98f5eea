"""``POST /webhooks/payments``: the payment provider's signed events.

The body is streamed under a size limit (413 as soon as it is past it, without
reading the rest). The signature is checked on the raw body before anything is
parsed (400 when it is missing, malformed, wrong or outside the 5-minute
tolerance). A duplicate or an older
event for the same payment answers 200 too, so the provider stops resending.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from commands.checkout import webhooks as checkout_webhooks
from commands.checkout.webhooks import InvalidWebhook
from commands.payments import SIGNATURE_HEADER, InvalidSignature, verify
from commands.store.unit_of_work import MessageMetadata
from gateway.http.protocol import HttpError, read_body

log = logging.getLogger("gateway.webhooks")
MAX_BODY_BYTES = 64 * 1024
# Real headers are ~80 bytes (one timestamp, one or two HMACs while rotating secrets).
MAX_SIGNATURE_HEADER_CHARS = 1024


def _refuse(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


async def payment_webhook(request: Request) -> Response:
    """A failure past the HTTP layer is logged here, inside the request (so with its id), and
    answered with a masked 500: the provider sends the event again."""
    try:
        return await _receive(request)
    except Exception:
        log.exception("payment webhook failed")
        return _refuse(500, "internal", "the event could not be handled; send it again")


async def _receive(request: Request) -> Response:
    container = request.app.state.container
    try:
        body = await read_body(request, MAX_BODY_BYTES)
    except HttpError:
        return _refuse(413, "too_large", f"webhook body larger than {MAX_BODY_BYTES} bytes")
    header = request.headers.get(SIGNATURE_HEADER)
    try:
        if header is not None and len(header) > MAX_SIGNATURE_HEADER_CHARS:
            raise InvalidSignature("malformed signature header: too long")
        verify(container.settings.webhook_secret, header, body, time.time())
    except (InvalidSignature, ValueError, OverflowError) as exc:
        # ValueError/OverflowError: a timestamp too long for int() or too large for float arithmetic.
        reason = str(exc) if isinstance(exc, InvalidSignature) else "malformed signature timestamp"
        log.warning("payment webhook refused", extra={"reason": reason})
        return _refuse(400, "invalid_signature", reason)
    try:
        event = checkout_webhooks.parse(body)
    except InvalidWebhook as exc:
        return _refuse(400, "invalid_event", str(exc))
    state = request.scope.get("state", {})
    metadata = MessageMetadata(
        request_id=state.get("request_id"),
        correlation_id=state.get("correlation_id"),
        causation_id=event.receipt.event_id,
        actor="system:payment-webhook",
    )
    verdict = await checkout_webhooks.handle(container.services.settlement, event, metadata)
    return JSONResponse({"received": True, "result": verdict})
