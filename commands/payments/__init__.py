"""Payments: the provider port, its HTTP client, webhook signatures (the sandbox lives in ``.sandbox``)."""

from commands.payments.http_client import HttpPaymentProvider
from commands.payments.port import (
    IdempotencyMismatch,
    InvalidPaymentRequest,
    PaymentError,
    PaymentProvider,
    PaymentProviderUnavailable,
    PaymentResult,
    PaymentStatus,
)
from commands.payments.signing import SIGNATURE_HEADER, InvalidSignature, sign, verify

__all__ = [
    "SIGNATURE_HEADER",
    "HttpPaymentProvider",
    "IdempotencyMismatch",
    "InvalidPaymentRequest",
    "InvalidSignature",
    "PaymentError",
    "PaymentProvider",
    "PaymentProviderUnavailable",
    "PaymentResult",
    "PaymentStatus",
    "sign",
    "verify",
]
