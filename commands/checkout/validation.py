"""The checkout's input shape, checked before anything is claimed or read."""

from __future__ import annotations

import re

from commands.domain import cart as cart_domain
from commands.domain.countries import NOT_A_COUNTRY, is_country
from commands.errors import DomainError, InvalidInput, ValidationErrors
from commands.messages.orders import CompleteCheckout
from commands.store import idempotency

MAX_TEXT = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def validate(command: CompleteCheckout) -> None:
    """Input shape, before anything is claimed or read."""
    errors: list[DomainError] = []
    try:
        idempotency.validate_key(command.idempotency_key, ["idempotencyKey"])
    except DomainError as exc:
        errors.append(exc)
    if len(command.email) > 254 or not _EMAIL.match(command.email):
        errors.append(InvalidInput("email must be an address like name@example.com", ["email"]))
    address = command.shipping_address
    required = {
        "name": address.name,
        "line1": address.line1,
        "city": address.city,
        "postalCode": address.postal_code,
    }
    for name, value in required.items():
        if not value.strip() or len(value) > MAX_TEXT:
            errors.append(
                InvalidInput(f"{name} must be 1 to {MAX_TEXT} characters", ["shippingAddress", name])
            )
    if address.line2 is not None and len(address.line2) > MAX_TEXT:
        errors.append(
            InvalidInput(f"line2 must be at most {MAX_TEXT} characters", ["shippingAddress", "line2"])
        )
    if not is_country(address.country_code):
        errors.append(InvalidInput(NOT_A_COUNTRY, ["shippingAddress", "countryCode"]))
    if address.region is not None and not 0 < len(address.region) <= cart_domain.MAX_CODE:
        errors.append(
            InvalidInput(
                f"region must be 1 to {cart_domain.MAX_CODE} characters", ["shippingAddress", "region"]
            )
        )
    for name, code in (("shippingMethod", command.shipping_method), ("discountCode", command.discount_code)):
        if code is not None and not 0 < len(code) <= cart_domain.MAX_CODE:
            errors.append(InvalidInput(f"{name} must be 1 to {cart_domain.MAX_CODE} characters", [name]))
    if not command.payment_token or len(command.payment_token) > 255:
        errors.append(InvalidInput("payment token must be 1 to 255 characters", ["payment", "token"]))
    if errors:
        raise ValidationErrors(errors)
