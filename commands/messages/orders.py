"""Checkout and order commands, and the outcome each one stores under its idempotency key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from commands.bus import Command
from commands.errors import DomainError, InvalidInput, NotFound, ValidationErrors
from commands.events.order import AddressData
from commands.store.unit_of_work import MessageMetadata

__all__ = [
    "AddressData",
    "CancelOrder",
    "CompleteCheckout",
    "ErrorInfo",
    "MarkOrderDelivered",
    "MarkOrderShipped",
    "OrderActor",
    "OrderCommand",
    "OrderOutcome",
    "RefundOrder",
    "RequestFulfillment",
]


@dataclass(frozen=True)
class ErrorInfo:
    """A business failure that is part of a stored outcome (e.g. PAYMENT_DECLINED)."""

    code: str
    message: str
    field: tuple[str, ...] | None = None

    def to_error(self) -> DomainError:
        return DomainError(self.message, self.field, self.code)


@dataclass(frozen=True)
class OrderOutcome:
    """What a checkout or order command did; replayed as is for the same idempotency key."""

    order_id: str | None
    position: int | None
    errors: tuple[ErrorInfo, ...] = ()

    def to_error(self) -> DomainError | None:
        if not self.errors:
            return None
        return ValidationErrors([e.to_error() for e in self.errors])

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "position": self.position,
            "errors": [
                {"code": e.code, "message": e.message, "field": None if e.field is None else list(e.field)}
                for e in self.errors
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrderOutcome:
        position = data.get("position")
        return cls(
            order_id=data.get("order_id"),
            position=None if position is None else int(position),
            errors=tuple(
                ErrorInfo(e["code"], e["message"], None if e.get("field") is None else tuple(e["field"]))
                for e in data.get("errors", [])
            ),
        )


@dataclass(frozen=True)
class CompleteCheckout(Command[OrderOutcome]):
    cart_id: str
    idempotency_key: str
    email: str
    shipping_address: AddressData
    payment_token: str
    expected_cart_version: int | None = None
    customer_id: str | None = None
    staff: bool = False
    # Override the cart's choices; None keeps the cart's (commands.domain.money).
    shipping_method: str | None = None
    discount_code: str | None = None
    # The total the buyer was shown: a different total now is PRICE_CHANGED.
    expected_total: Decimal | None = None

    operation: ClassVar[str] = "checkout"

    def idempotency_scope(self, metadata: MessageMetadata) -> str:
        if self.customer_id is not None:
            return f"checkout:customer:{self.customer_id}"
        return f"checkout:cart:{self.cart_id}"

    def idempotency_request(self) -> dict[str, Any]:
        address = self.shipping_address
        # Money choices join the request only when given: earlier keys keep their hashes.
        money = {
            name: str(value)
            for name, value in (
                ("region", address.region),
                ("shipping_method", self.shipping_method),
                ("discount_code", self.discount_code),
                ("expected_total", self.expected_total),
            )
            if value is not None
        }
        return {
            **money,
            "cart": self.cart_id,
            "email": self.email,
            "address": [
                address.name,
                address.line1,
                address.line2,
                address.city,
                address.postal_code,
                address.country_code,
            ],
            "token": self.payment_token,
            "expected_version": self.expected_cart_version,
        }


@dataclass(frozen=True)
class OrderActor:
    """Who changes an order: ``actor`` as in event metadata, the customer it acts as, admin rights."""

    actor: str
    customer_id: str | None = None
    admin: bool = False


MAX_NOTE = 500


def clean_note(value: str | None, field: str) -> str | None:
    """A free-text note (reason, tracking number): at most MAX_NOTE characters, blank means none."""
    if value is None:
        return None
    if len(value) > MAX_NOTE:
        raise InvalidInput(f"{field} must be at most {MAX_NOTE} characters", [field])
    return value.strip() or None


class _OrderCommand:
    """Order commands run once per idempotency key, scoped to the operation and the caller."""

    operation: ClassVar[str]
    order_id: str
    actor: OrderActor

    def idempotency_scope(self, metadata: MessageMetadata) -> str:
        return f"{self.operation}:{self.actor.actor}"

    def idempotency_request(self) -> dict[str, Any]:
        return {"order": self.order_id, **self.notes()}

    def notes(self) -> dict[str, Any]:
        return {}

    def validate(self) -> None:
        try:
            uuid.UUID(self.order_id)
        except ValueError:
            raise NotFound("order not found", ["orderId"]) from None
        self.notes()


@dataclass(frozen=True)
class CancelOrder(_OrderCommand, Command[OrderOutcome]):
    operation: ClassVar[str] = "cancel"
    order_id: str
    actor: OrderActor
    idempotency_key: str
    reason: str | None = None

    def notes(self) -> dict[str, Any]:
        return {"reason": clean_note(self.reason, "reason") or "cancelled on request"}


@dataclass(frozen=True)
class RequestFulfillment(_OrderCommand, Command[OrderOutcome]):
    operation: ClassVar[str] = "request_fulfillment"
    order_id: str
    actor: OrderActor
    idempotency_key: str


@dataclass(frozen=True)
class MarkOrderShipped(_OrderCommand, Command[OrderOutcome]):
    operation: ClassVar[str] = "mark_shipped"
    order_id: str
    actor: OrderActor
    idempotency_key: str
    tracking_number: str | None = None

    def notes(self) -> dict[str, Any]:
        return {"tracking": clean_note(self.tracking_number, "trackingNumber")}


@dataclass(frozen=True)
class MarkOrderDelivered(_OrderCommand, Command[OrderOutcome]):
    operation: ClassVar[str] = "mark_delivered"
    order_id: str
    actor: OrderActor
    idempotency_key: str


@dataclass(frozen=True)
class RefundOrder(_OrderCommand, Command[OrderOutcome]):
    operation: ClassVar[str] = "refund"
    order_id: str
    actor: OrderActor
    idempotency_key: str
    reason: str | None = None

    def notes(self) -> dict[str, Any]:
        return {"reason": clean_note(self.reason, "reason")}


OrderCommand = CancelOrder | RequestFulfillment | MarkOrderShipped | MarkOrderDelivered | RefundOrder
