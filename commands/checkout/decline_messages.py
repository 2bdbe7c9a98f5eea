"""Our own words for a payment the provider did not accept.

Whatever the provider says (a decline code, or the raw body of an error answer)
goes to the logs; buyers, events and stored outcomes only ever see the reasons
and messages of this module.
"""

from __future__ import annotations

import logging

log = logging.getLogger("commands.checkout.payments")

# The provider's decline codes we recognise, as the buyer reads them.
KNOWN_REASONS: dict[str, str] = {
    "card_declined": "the card was declined",
    "insufficient_funds": "the card has insufficient funds",
    "expired_card": "the card has expired",
    "incorrect_cvc": "the security code is incorrect",
    "invalid_token": "the payment details were not accepted",
    "processing_error": "the card could not be processed",
}
# Anything else (an unknown code, an error answer's body) is recorded as this.
UNRECOGNISED = "declined"


def recorded_reason(raw: str | None, order_id: str) -> str:
    """The reason stored with the decline: a known code or ``declined``; the raw one is logged."""
    if raw is not None and raw in KNOWN_REASONS:
        return raw
    if raw is not None:
        log.warning(
            "payment not accepted by the provider", extra={"order_id": order_id, "provider_reason": raw}
        )
    return UNRECOGNISED


def buyer_message(reason: str | None) -> str:
    detail = KNOWN_REASONS.get(reason or "")
    if detail is None:
        return "the payment was declined; try another card"
    return f"the payment was declined ({detail}); try another card"
