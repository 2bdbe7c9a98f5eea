"""Cart commands. Each returns a CartResult."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from commands.bus import Command
from commands.domain.cart import CartActor, LineRequest, QuantityChange

__all__ = [
    "AddCartLines",
    "ApplyCartDiscountCode",
    "AttachCartToCustomer",
    "CartActor",
    "CartResult",
    "CreateCart",
    "LineRequest",
    "QuantityChange",
    "RemoveCartDiscountCode",
    "RemoveCartLines",
    "SetCartShipping",
    "UpdateCartLines",
    "new_cart_id",
]


def new_cart_id() -> str:
    """128 random bits: a guest cart's id is its bearer capability, so it must be unguessable."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class CartResult:
    cart_id: str
    version: int
    # Last event this command appended (None when it appended nothing).
    position: int | None
    # What a read of ``cart_id`` must wait for to see this outcome (also set when nothing was appended).
    read_position: int | None


@dataclass(frozen=True)
class CreateCart(Command[CartResult]):
    actor: CartActor
    currency_code: str | None = None
    lines: tuple[LineRequest, ...] = ()
    # Chosen before dispatch so a retried handler creates the same cart.
    cart_id: str = field(default_factory=new_cart_id)


@dataclass(frozen=True)
class AddCartLines(Command[CartResult]):
    cart_id: str
    actor: CartActor
    lines: tuple[LineRequest, ...]
    expected_version: int | None = None


@dataclass(frozen=True)
class UpdateCartLines(Command[CartResult]):
    cart_id: str
    actor: CartActor
    lines: tuple[QuantityChange, ...]
    expected_version: int | None = None


@dataclass(frozen=True)
class RemoveCartLines(Command[CartResult]):
    cart_id: str
    actor: CartActor
    line_ids: tuple[str, ...]
    expected_version: int | None = None


@dataclass(frozen=True)
class AttachCartToCustomer(Command[CartResult]):
    """``actor.customer_id`` is the customer the cart is bound to."""

    cart_id: str
    actor: CartActor


@dataclass(frozen=True)
class SetCartShipping(Command[CartResult]):
    """Where the cart ships and, optionally, by which shipping method."""

    cart_id: str
    actor: CartActor
    country_code: str
    region: str | None = None
    method_code: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class ApplyCartDiscountCode(Command[CartResult]):
    cart_id: str
    actor: CartActor
    code: str
    expected_version: int | None = None


@dataclass(frozen=True)
class RemoveCartDiscountCode(Command[CartResult]):
    cart_id: str
    actor: CartActor
    expected_version: int | None = None
