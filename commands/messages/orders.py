"""Checkout and order commands, and the outcome each one stores under its idempotency key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from commands.bus import Command
from commands.errors import DomainError, ValidationErrors
from commands.events.order import AddressData

__all__ = [
    "AddressData",
    "CancelOrder",
    "CompleteCheckout",
    "ErrorInfo",
    "MarkOrderDelivered",
    "MarkOrderShipped",
    "OrderActor",
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


@dataclass(frozen=True)
class OrderActor:
    """Who changes an order: ``actor`` as in event metadata, the customer it acts as, admin rights."""

    actor: str
    customer_id: str | None = None
    admin: bool = False


@dataclass(frozen=True)
class CancelOrder(Command[OrderOutcome]):
    order_id: str
    actor: OrderActor
    idempotency_key: str
    reason: str | None = None


@dataclass(frozen=True)
class RequestFulfillment(Command[OrderOutcome]):
    order_id: str
    actor: OrderActor
    idempotency_key: str


@dataclass(frozen=True)
class MarkOrderShipped(Command[OrderOutcome]):
    order_id: str
    actor: OrderActor
    idempotency_key: str
    tracking_number: str | None = None


@dataclass(frozen=True)
class MarkOrderDelivered(Command[OrderOutcome]):
    order_id: str
    actor: OrderActor
    idempotency_key: str


@dataclass(frozen=True)
class RefundOrder(Command[OrderOutcome]):
    order_id: str
    actor: OrderActor
    idempotency_key: str
    reason: str | None = None
