"""``POST /webhooks/payments``: the payment provider's signed events.

The signature is checked on the raw body before anything is parsed (400 when it
is missing, wrong or outside the 5-minute tolerance). A duplicate or an older
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

log = logging.getLogger("gateway.webhooks")
MAX_BODY_BYTES = 64 * 1024


def _refuse(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


async def payment_webhook(request: Request) -> Response:
    container = request.app.state.container
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _refuse(413, "too_large", "webhook body too large")
    try:
        verify(container.settings.webhook_secret, request.headers.get(SIGNATURE_HEADER), body, time.time())
    except InvalidSignature as exc:
        log.warning("payment webhook refused", extra={"reason": str(exc)})
        return _refuse(400, "invalid_signature", str(exc))
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
