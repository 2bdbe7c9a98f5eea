"""Provider webhook events (already signature-checked by the gateway) into settlements.

Deduplication by provider event id and the per-payment ``sequence`` check happen
inside the settlement's transaction, together with the event's effects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from commands.checkout.payment_attempts import Outcome
from commands.checkout.settle import PaymentSettlement, WebhookReceipt
from commands.payments import PaymentStatus
from commands.store.unit_of_work import MessageMetadata

MAX_ID = 100


class InvalidWebhook(ValueError):
    """The body is not a provider event we can read."""


@dataclass(frozen=True)
class WebhookEvent:
    key: str
    outcome: Outcome
    receipt: WebhookReceipt


def _text(value: Any, name: str, *, optional: bool = False, limit: int = 255) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidWebhook(f"{name} must be a string of 1 to {limit} characters")
    return value


def parse(body: bytes) -> WebhookEvent:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidWebhook("body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        raise InvalidWebhook("an event is an object with data")
    data: dict[str, Any] = event["data"]
    status = _text(data.get("status"), "data.status", limit=32)
    if status not in {s.value for s in PaymentStatus}:
        raise InvalidWebhook(f"unknown payment status {status!r}")
    sequence = data.get("sequence")
    if sequence is not None and (isinstance(sequence, bool) or not isinstance(sequence, int)):
        raise InvalidWebhook("data.sequence must be an integer")
    reference = _text(data.get("provider_reference"), "data.provider_reference", optional=True, limit=MAX_ID)
    key = _text(data.get("idempotency_key"), "data.idempotency_key")
    event_id = _text(event.get("id"), "id", limit=MAX_ID)
    event_type = _text(event.get("type"), "type", limit=64)
    assert key is not None and event_id is not None and event_type is not None and status is not None
    reason = data.get("decline_reason") if isinstance(data.get("decline_reason"), str) else None
    if status == PaymentStatus.DECLINED and reason is None:
        reason = "declined (reported by the provider's webhook)"
    return WebhookEvent(
        key=key,
        outcome=Outcome(status, reference, reason, dict(event)),
        receipt=WebhookReceipt(event_id, event_type, reference, sequence),
    )


async def handle(settlement: PaymentSettlement, event: WebhookEvent, metadata: MessageMetadata) -> str:
    """Settle the event; the verdict says whether it changed anything (applied, duplicate, stale, ignored)."""
    settled = await settlement.settle(event.key, event.outcome, metadata, event.receipt)
    return settled.verdict
