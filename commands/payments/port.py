"""The payment provider port: what the checkout saga may ask a card processor.

Every call carries an idempotency key chosen by the caller. Repeating a call with
the same key and the same parameters never moves money twice; it returns the
first outcome. Keys identify one operation each, so ``lookup`` can tell, after a
timeout, what became of the operation sent with a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol


class PaymentStatus(StrEnum):
    """Outcome of one provider operation."""

    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"
    PENDING = "PENDING"
    """The provider received the operation but has no outcome yet."""
    FAILED = "FAILED"
    """The provider refused the operation (e.g. void of a captured payment); nothing changed."""


@dataclass(frozen=True)
class PaymentResult:
    """What the provider answered for one operation.

    ``decline_reason`` explains DECLINED and FAILED outcomes. ``raw`` is the
    provider's answer as received, for logs and audit; it takes no part in
    equality.
    """

    status: PaymentStatus
    provider_reference: str | None
    amount: Decimal
    currency: str
    idempotency_key: str
    decline_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


class PaymentError(Exception):
    """Base of the errors a payment provider raises."""


class PaymentProviderUnavailable(PaymentError):
    """No usable answer (timeout, connection error, 5xx): the outcome is unknown.

    The operation may or may not have happened. Settle it by the provider's
    webhook or by ``lookup`` with the same idempotency key, never by sending
    the operation again under a new key.
    """


class IdempotencyMismatch(PaymentError):
    """The idempotency key was already used with different parameters."""


class InvalidPaymentRequest(PaymentError):
    """The provider rejected the request as malformed; nothing was done."""


class PaymentProvider(Protocol):
    """A card processor. Amounts are exact decimals in ``currency`` (ISO 4217)."""

    async def authorize(
        self, *, idempotency_key: str, amount: Decimal, currency: str, token: str, reference_hint: str
    ) -> PaymentResult:
        """Reserve ``amount`` on the card behind ``token``.

        ``reference_hint`` (our order id) is echoed back in webhooks.
        Returns AUTHORIZED, DECLINED or PENDING.
        """
        ...

    async def capture(
        self, *, idempotency_key: str, provider_reference: str, amount: Decimal
    ) -> PaymentResult:
        """Take up to the authorized amount. Returns CAPTURED or FAILED."""
        ...

    async def void(self, *, idempotency_key: str, provider_reference: str) -> PaymentResult:
        """Release an authorization that was not captured. Returns VOIDED or FAILED."""
        ...

    async def refund(
        self, *, idempotency_key: str, provider_reference: str, amount: Decimal
    ) -> PaymentResult:
        """Give back up to the captured amount. Returns REFUNDED or FAILED."""
        ...

    async def lookup(self, *, idempotency_key: str) -> PaymentResult | None:
        """The current outcome of the operation sent with this key; None if never received."""
        ...
