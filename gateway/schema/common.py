"""Types shared by every domain: Node, paging, money, freshness, user errors."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum

import strawberry

from commands.errors import DomainError, ValidationErrors
from gateway.schema.list_sizes import MAX_USER_ERRORS
from gateway.schema.scalars import Position
from queries.freshness import Freshness as FreshnessModel

_CENT = Decimal("0.01")


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None = None
    end_cursor: str | None = None


@strawberry.type
class Money:
    amount: Decimal
    currency_code: str

    @classmethod
    def of(cls, amount: Decimal, currency: str) -> Money:
        """Cents when the amount has no finer part (19.9 -> 19.90), else the amount as it is."""
        cents = amount.quantize(_CENT)
        return cls(amount=cents if cents == amount else amount.normalize(), currency_code=currency)


@strawberry.type(description="How current the answering read model was. Computed at read time.")
class Freshness:
    projection: str
    position: Position
    head_position: Position
    lag_events: int
    lag_seconds: float
    updated_at: datetime | None

    @classmethod
    def of(cls, model: FreshnessModel) -> Freshness:
        return cls(
            projection=model.projection,
            position=Position(model.position),
            head_position=Position(model.head_position),
            lag_events=model.lag_events,
            lag_seconds=round(model.lag_seconds, 3),
            updated_at=model.updated_at,
        )


@strawberry.enum
class UserErrorCode(Enum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    CART_EMPTY = "CART_EMPTY"
    CART_NOT_ACTIVE = "CART_NOT_ACTIVE"
    PRICE_CHANGED = "PRICE_CHANGED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_PROGRESS = "IDEMPOTENCY_KEY_IN_PROGRESS"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    INVALID_STATE_TRANSITION = "INVALID_STATE_TRANSITION"
    FORBIDDEN = "FORBIDDEN"
    SHIPPING_METHOD_REQUIRED = "SHIPPING_METHOD_REQUIRED"
    SHIPPING_METHOD_INELIGIBLE = "SHIPPING_METHOD_INELIGIBLE"
    DISCOUNT_CODE_INVALID = "DISCOUNT_CODE_INVALID"
    DISCOUNT_CODE_EXPIRED = "DISCOUNT_CODE_EXPIRED"
    DISCOUNT_CODE_MINIMUM_NOT_MET = "DISCOUNT_CODE_MINIMUM_NOT_MET"
    DISCOUNT_CODE_USAGE_LIMIT_REACHED = "DISCOUNT_CODE_USAGE_LIMIT_REACHED"


@strawberry.type
class UserError:
    field: list[str] | None
    message: str
    code: UserErrorCode

    @classmethod
    def from_domain(cls, error: DomainError, prefix: list[str] | None = None) -> list[UserError]:
        """One entry per field error; ``prefix`` roots field paths at the argument name."""
        errors = error.errors if isinstance(error, ValidationErrors) else [error]
        return [
            cls(
                field=None if e.field is None else [*(prefix or []), *e.field],
                message=e.message,
                code=UserErrorCode(e.code),
            )
            for e in errors[:MAX_USER_ERRORS]
        ]
